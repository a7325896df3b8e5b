// Element-wise combinations of equally shaped inputs (cuda-convnet's eltsum and eltmax).
//   eltsum: y = sum_i c_i x_i;            backward: dx_i = c_i dy
//   eltmax: y = max_i x_i;                backward: dx_i = dy where x_i == y (ties all receive it)
// Any shape, the same for every input, the output and the gradients. Backward entry points
// write dx = beta*dx + gradient.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace convnet {

void eltsum_forward(const std::vector<Tensor>& xs, const std::vector<double>& coeffs,
                    const Tensor& y);
void eltsum_backward(const Tensor& dy, const std::vector<double>& coeffs,
                     const std::vector<Tensor>& dxs, float beta = 0.f);
void eltmax_forward(const std::vector<Tensor>& xs, const Tensor& y);
void eltmax_backward(const std::vector<Tensor>& xs, const Tensor& y, const Tensor& dy,
                     const std::vector<Tensor>& dxs, float beta = 0.f);
// out = beta*out + c*in: eltsum's backward for a single gradient, as an op of its own.
void eltwise_scale(const Tensor& in, double c, const Tensor& out, float beta = 0.f);

template <typename T>
void eltsum_forward_cpu(const std::vector<const T*>& xs, const std::vector<double>& coeffs, T* y,
                        std::int64_t n);
template <typename T>
void scale_cpu(const T* in, T c, T* out, std::int64_t n, T beta);  // out = beta*out + c*in
template <typename T>
void eltmax_forward_cpu(const std::vector<const T*>& xs, T* y, std::int64_t n);
template <typename T>
void eltmax_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, T beta);

// CUDA launchers (kernels/eltwise.cu), float32 device pointers, any number of arrays per call.
// y may be one of xs (in-place accumulation); gradients must not alias the inputs.
void eltsum_forward_cuda(const std::vector<const float*>& xs, const std::vector<double>& coeffs,
                         float* y, std::int64_t n, void* stream);
// outs[i] = beta*outs[i] + coeffs[i]*in, reading `in` once for all outputs.
void scale_cuda(const float* in, const std::vector<double>& coeffs,
                const std::vector<float*>& outs, std::int64_t n, float beta, void* stream);
void eltmax_forward_cuda(const std::vector<const float*>& xs, float* y, std::int64_t n,
                         void* stream);
void eltmax_backward_cuda(const std::vector<const float*>& xs, const float* y, const float* dy,
                          const std::vector<float*>& dxs, std::int64_t n, float beta,
                          void* stream);

}  // namespace convnet
