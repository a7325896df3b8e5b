// Local response normalisation across maps (the paper's LRN, cuda-convnet's cmrnorm).
// Layout: x, y, dy, dx are (N, C, H, W).
//   y[n,f,i,j] = x[n,f,i,j] * d[n,f,i,j]^-beta,  d = k + alpha * sum_{c in W(f)} x[n,c,i,j]^2
// W(f) = maps [f - pre, f - pre + size) clipped to [0, C), or with `blocked` the block of `size`
// consecutive maps holding f. The paper's LRN(n) is size 2*(n/2)+1, pre n/2, alpha as given;
// cmrnorm is pre size/2 with alpha = scale/size and k = minDiv. The backward pass recomputes d
// (as cuda-convnet2 does) rather than storing it.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convnet {

struct LrnParams {
    int size = 5;
    int pre = 2;
    bool blocked = false;
    double alpha = 1e-4, beta = 0.75, k = 2.0;

    // The maps [first, last] summed for map f of `channels`.
    void window(std::int64_t f, std::int64_t channels, std::int64_t* first,
                std::int64_t* last) const;
};

void lrn_forward(const Tensor& x, const Tensor& y, const LrnParams& p);
void lrn_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                  const LrnParams& p, float beta = 0.f);

template <typename T>
void lrn_forward_cpu(const T* x, T* y, std::int64_t n, std::int64_t c, std::int64_t hw,
                     const LrnParams& p);
template <typename T>
void lrn_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t c,
                      std::int64_t hw, const LrnParams& p, T beta);

// CUDA launchers (kernels/lrn.cu), float32. `naive` picks the one-thread-per-element kernel (the
// second GPU implementation, for differential tests and benchmarks) over the tuned ones.
void lrn_forward_cuda(const float* x, float* y, std::int64_t n, std::int64_t c, std::int64_t hw,
                      const LrnParams& p, void* stream, bool naive = false);
void lrn_backward_cuda(const float* x, const float* y, const float* dy, float* dx, std::int64_t n,
                       std::int64_t c, std::int64_t hw, const LrnParams& p, float beta,
                       void* stream, bool naive = false);

}  // namespace convnet
