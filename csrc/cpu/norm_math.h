// Shared by the response normalisations (lrn.cpp, rnorm.cpp).
#pragma once

#include <cmath>

namespace convnet {

// d^-beta; beta = 0.75 (the paper's and cuda-convnet's usual value) avoids pow:
// d^0.75 = sqrt(d * sqrt(d)).
template <typename T>
inline T pow_neg(T d, T beta) {
    if (beta == T(0.75)) return T(1) / std::sqrt(d * std::sqrt(d));
    return std::pow(d, -beta);
}

}  // namespace convnet
