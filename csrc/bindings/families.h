// convnet._core is bound in pieces, one function per family, which bindings.cpp calls in order
// (the Tensor class before the functions that take tensors, so their signatures name it).
#pragma once

#include <pybind11/pybind11.h>

namespace convnet::bindings {

// Exceptions, threads, CUDA helpers, the allocator, Device and Tensor.
void bind_core(pybind11::module_& m);
// DLPack and __cuda_array_interface__ on convnet.Tensor (after the class is bound).
void bind_interop(pybind11::module_& m);
void bind_net(pybind11::module_& m);
// Peer access, copy paths and test streams between GPUs (CUDA builds; nothing otherwise).
void bind_between_devices(pybind11::module_& m);
// emu_broken_kernel, in emulated builds only (CONVNET_CUDA=EMU).
void bind_emulator(pybind11::module_& m);

// The ops, each bound once over convnet.Tensor (CPU or CUDA); convnet.ops wraps numpy arrays.
void bind_gemm_conv_ops(pybind11::module_& m);       // conv, local, fc, the math precision
void bind_neuron_eltwise_ops(pybind11::module_& m);  // neuron, eltsum/eltmax/scale, bias, concat
void bind_norm_pool_ops(pybind11::module_& m);       // lrn, rnorm, cnorm, pool
void bind_dropout_softmax_sgd_ops(pybind11::module_& m);

}  // namespace convnet::bindings
