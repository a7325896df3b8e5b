// The interface between CPU dropout (dropout.cpp) and its AVX-512 loop (dropout_avx512.cpp).
// Plain data and pointers only: the kernel file is compiled for AVX-512 and BMI2 and must not
// share inline functions with the rest of the library.
#pragma once

#include <cstdint>

namespace convnet::dropout_avx512 {

// Elements [64 * g0, min(n, 64 * g1)) of y = beta * y + x * mask * factor, float32 (beta 0: y
// is only written). Element i's mask bit: word j % 4 of Philox4x32-10 block j / 4 of the stream
// (seed, layer, step), j = 64 * first_group + i, as rng::stream_block draws it, below `below`;
// every bit set when all_kept.
struct Apply {
    std::uint64_t seed, step;
    std::int64_t first_group;
    std::uint32_t layer;
    bool all_kept;
    std::uint32_t below;
    float factor, beta;
};
void apply(const float* x, float* y, std::int64_t n, const Apply& a, std::int64_t g0,
           std::int64_t g1);

}  // namespace convnet::dropout_avx512
