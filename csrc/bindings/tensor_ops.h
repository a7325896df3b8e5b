// The per-family binding functions of the tensor-form ops, called from bindings.cpp. Each family
// lives in its own file so the families can change independently.
#pragma once

#include <pybind11/pybind11.h>

namespace convnet::bindings {

void bind_norm_pool_tensor_ops(pybind11::module_& m);
void bind_elementwise_tensor_ops(pybind11::module_& m);
void bind_gemm_conv_tensor_ops(pybind11::module_& m);
// DLPack and __cuda_array_interface__ on convnet.Tensor (after the class is bound).
void bind_interop(pybind11::module_& m);

}  // namespace convnet::bindings
