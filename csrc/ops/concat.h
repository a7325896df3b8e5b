// Concatenation of each sample's features (cuda-convnet2's concat: rows of its feature-major
// matrices). Layout: x_i is (N, K_i) (any (N, ...) read as (N, K_i) in C order); y is
// (N, sum K_i). Backward splits dy back; it writes dx_i = beta*dx_i + slice of dy.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace convnet {

void concat_forward(const std::vector<Tensor>& xs, const Tensor& y);
void concat_backward(const Tensor& dy, const std::vector<Tensor>& dxs, float beta = 0.f);

// parts[i] holds n rows of widths[i] values; whole holds n rows of sum(widths).
template <typename T>
void concat_copy_cpu(const std::vector<T*>& parts, const std::vector<std::int64_t>& widths,
                     T* whole, std::int64_t n, bool to_whole, T beta);

// CUDA launcher (kernels/concat.cu), float32 device pointers, the same contract.
void concat_copy_cuda(const std::vector<float*>& parts, const std::vector<std::int64_t>& widths,
                      float* whole, std::int64_t n, bool to_whole, float beta, void* stream);

}  // namespace convnet
