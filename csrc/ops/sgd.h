// The paper's SGD update, in place, element-wise over one parameter tensor:
//   v <- mom * v - wc * eps * w - eps * grad;   w <- w + v
// (section 5 of the paper; cuda-convnet's epsW/momW/wc per weight, epsB/momB per bias).
// w, grad, v: same shape, any layout.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convnet {

struct SgdParams {
    double eps = 0.01;  // learning rate
    double mom = 0.9;   // momentum
    double wc = 0.0;    // weight decay (L2 coefficient)
};

void sgd_update(const Tensor& w, const Tensor& grad, const Tensor& v, const SgdParams& p);

template <typename T>
void sgd_update_cpu(T* w, const T* grad, T* v, std::int64_t n, const SgdParams& p);

// CUDA launcher (kernels/sgd.cu), float32 device pointers: one fused pass, float4 where aligned.
void sgd_update_cuda(float* w, const float* grad, float* v, std::int64_t n, const SgdParams& p,
                     void* stream);

}  // namespace convnet
