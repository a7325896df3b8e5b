// Stands in for the CUDA toolkit's cuda_bf16.h on the emulated device (CONVNET_CUDA=EMU): the
// bfloat16 pair type and its conversion from two floats, rounding to nearest even as the
// hardware does.
#pragma once

#include <cstdint>
#include <cstring>

#include "cuda_runtime.h"

struct __nv_bfloat16 {
    std::uint16_t bits;
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};

inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    std::uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{std::uint16_t((u >> 16) | 0x40)};
    u += 0x7fffu + ((u >> 16) & 1u);  // to nearest, ties to even
    return __nv_bfloat16{std::uint16_t(u >> 16)};
}

inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
    return __nv_bfloat162{__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}
