// The power term of the response normalisations (LRN/cmrnorm, rnorm, cnorm), shared by the CPU
// path (csrc/cpu/lrn.cpp, rnorm.cpp, cnorm.cpp) and the kernels (kernels/lrn.cu, rnorm.cu), so
// both compute d^-beta the same way.
#pragma once

#include <cmath>

#include "math/hostdevice.h"

namespace convnet {

// d^-beta. beta = 0.75 (the paper's and cuda-convnet's usual value) avoids pow:
// d^0.75 = sqrt(d * sqrt(d)), with IEEE-rounded sqrt and division, which gives the same bits on
// the CPU and the GPU (the device intrinsics below forbid contraction and approximate division).
template <typename T>
CONVNET_HD T pow_neg(T d, T beta) {
#if defined(__CUDA_ARCH__)
    if (beta == T(0.75)) return __fdiv_rn(1.f, __fsqrt_rn(__fmul_rn(d, __fsqrt_rn(d))));
    return powf(d, -beta);
#else
    if (beta == T(0.75)) return T(1) / std::sqrt(d * std::sqrt(d));
    return std::pow(d, -beta);
#endif
}

}  // namespace convnet
