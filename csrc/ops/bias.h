// A bias per output position, shared over the batch: y[n, ...] += b[...]. Used where cuda-convnet
// has one bias per filter and output position (conv with sharedBiases=0); the per-filter biases
// of conv and fc live inside those ops.
// Layouts: y and dy are (N, *b.shape); db has b's shape. Backward writes db = beta*db + sum_n dy.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convnet {

void bias_add_forward(const Tensor& y, const Tensor& b);
void bias_add_backward(const Tensor& dy, const Tensor& db, float beta = 0.f);

template <typename T>
void bias_add_forward_cpu(T* y, const T* b, std::int64_t n, std::int64_t size);
template <typename T>
void bias_add_backward_cpu(const T* dy, T* db, std::int64_t n, std::int64_t size, T beta);

// CUDA launchers (kernels/bias.cu), float32 device pointers; the backward is deterministic.
void bias_add_forward_cuda(float* y, const float* b, std::int64_t n, std::int64_t size,
                           void* stream);
void bias_add_backward_cuda(const float* dy, float* db, std::int64_t n, std::int64_t size,
                            float beta, void* stream);

}  // namespace convnet
