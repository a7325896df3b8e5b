// Neurons: element-wise activations (cuda-convnet's `neuron=`). Any shape; x, y, dy, dx share it.
// Entry points: the dispatching Tensor functions, the CPU implementation (float and double) and
// the CUDA launcher (float). Backward writes dx = beta*dx + gradient (beta 0 overwrites).
#pragma once

#include <cstdint>
#include <string>

#include "core/tensor.h"
#include "math/neuron_math.h"

namespace convnet {

// "relu", "tanh", ... -> NeuronType; throws ArgumentError listing the known names.
NeuronType neuron_type_from_name(const std::string& name);
// How many bracketed parameters a neuron takes (tanh[a,b]: 2, brelu[a]: 1, relu: 0).
int neuron_param_count(NeuronType type);

void neuron_forward(const Tensor& x, const Tensor& y, const NeuronParams& p);
// For an op that writes the gradient of a neuron's input in place of its output's (conv and pool
// backward, x_neuron): the neuron, where given, must take its gradient from its output, and the
// gradient must be overwritten (beta 0). Throws ArgumentError naming `op` otherwise.
void check_fused_neuron_gradient(const NeuronParams* neuron, float beta, const char* op);
void neuron_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                     const NeuronParams& p, float beta = 0.f);

template <typename T>
void neuron_forward_cpu(const T* x, T* y, std::int64_t n, const NeuronParams& p);
// y = neuron(y) on the calling thread: the epilogue of an op that runs its own threads and applies
// the neuron to each piece of output while it is still in cache (conv and pool forward).
template <typename T>
void neuron_in_place_cpu(T* y, std::int64_t n, const NeuronParams& p);
// dx = neuron'(y) * dx on the calling thread, for neurons whose gradient reads only their output
// y (neuron_gradient_reads_input false): the epilogue of an op that writes the gradient of a
// neuron's output and turns it into the gradient of the neuron's input as it goes.
template <typename T>
void neuron_gradient_in_place_cpu(const T* y, T* dx, std::int64_t n, const NeuronParams& p);
template <typename T>
void neuron_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n,
                         const NeuronParams& p, T beta);

void neuron_forward_cuda(const float* x, float* y, std::int64_t n, const NeuronParams& p,
                         void* stream);
void neuron_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                          std::int64_t n, const NeuronParams& p, float beta, void* stream);

}  // namespace convnet
