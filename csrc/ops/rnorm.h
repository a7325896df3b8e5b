// Response normalisation within each map (cuda-convnet's rnorm):
//   y[n,c,i,j] = x[n,c,i,j] * d^-beta,  d = k + alpha * sum_{(u,v) in W(i,j)} x[n,c,u,v]^2
// W(i,j) = rows [i - pre, i - pre + size) x columns [j - pre, j - pre + size), clipped to the
// image; cuda-convnet's window starts at -size/2, and its parser sets alpha = scale / size^2.
// cnorm (contrast normalisation) is the same with d summing squared deviations from the local
// mean, m = the mean of x over each pixel's own clipped window, while the numerator stays x:
//   d = k + alpha * sum_{q in W(p)} (x_q - m_q)^2
// Its backward pass is exact, including the path through the mean (cuda-convnet's kernel treats
// the mean as a constant there).
// Layout: x, y, dy, dx are (N, C, H, W). Backward recomputes d.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convnet {

struct RnormParams {
    int size = 3;
    int pre = 1;
    double alpha = 1e-4, beta = 0.75, k = 1.0;
};

void rnorm_forward(const Tensor& x, const Tensor& y, const RnormParams& p);
void rnorm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                    const RnormParams& p, float beta = 0.f);

void cnorm_forward(const Tensor& x, const Tensor& y, const RnormParams& p);
void cnorm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                    const RnormParams& p, float beta = 0.f);

// planes = N*C maps of H x W.
template <typename T>
void rnorm_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                       const RnormParams& p);
template <typename T>
void rnorm_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                        std::int64_t h, std::int64_t w, const RnormParams& p, T beta);

template <typename T>
void cnorm_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                       const RnormParams& p);
template <typename T>
void cnorm_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                        std::int64_t h, std::int64_t w, const RnormParams& p, T beta);

// CUDA launchers (kernels/rnorm.cu), float32, same arguments as the CPU functions. They refuse
// (ArgumentError) a window whose halos do not fit in the GPU's shared memory even for a 1x1 tile.
void rnorm_forward_cuda(const float* x, float* y, std::int64_t planes, std::int64_t h,
                        std::int64_t w, const RnormParams& p, void* stream);
void rnorm_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                         std::int64_t planes, std::int64_t h, std::int64_t w,
                         const RnormParams& p, float beta, void* stream);
void cnorm_forward_cuda(const float* x, float* y, std::int64_t planes, std::int64_t h,
                        std::int64_t w, const RnormParams& p, void* stream);
void cnorm_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                         std::int64_t planes, std::int64_t h, std::int64_t w,
                         const RnormParams& p, float beta, void* stream);

}  // namespace convnet
