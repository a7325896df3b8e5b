// CPU dropout's training loop in AVX-512 registers (dropout_kernels.h); built with -mavx512f
// -mbmi2 (CMake) and called only where the CPU has both. Sixteen Philox blocks run side by side,
// one vector per counter word (mul_hi_lo below makes a round's 32 x 32 -> 64-bit products). The
// four words' keep bits are interleaved into element order with pdep, and 64 elements are masked
// multiplies.
#include <immintrin.h>

// GCC 12's _mm512_mul_epu32 and shifts start from _mm512_undefined_epi32(), which
// -Wmaybe-uninitialized takes for a read of an uninitialised value.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "cpu/dropout_kernels.h"
#include "math/rng.h"  // the Philox constants only

namespace convnet::dropout_avx512 {

namespace {

constexpr std::int64_t kGroup = 64;  // elements per 16 blocks

// hi:lo = a * m lane by lane (32 x 32 -> 64 bits), m the same in every lane. The high words come
// from two vpmuludq (even and odd lanes), the low ones from one vpmulld: on Zen 4 cheaper than
// shifting and blending the products' low halves (AlexNet-sized dropout 8% faster).
inline void mul_hi_lo(__m512i a, __m512i m, __m512i& hi, __m512i& lo) {
    const __m512i even = _mm512_mul_epu32(a, m);
    const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    lo = _mm512_mullo_epi32(a, m);
    hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
}

// Bit e of keep[v]: whether element e of group first_group + v (block
// 16 * (a.first_group + first_group + v) + e / 4, word e % 4) is kept. kGroups groups at once:
// one group's rounds are a chain of dependent multiplies, and independent chains side by side
// keep the multiplier busy.
constexpr int kGroups = 4;

inline void keep_bits(const Apply& a, std::int64_t first_group, std::uint64_t (&keep)[kGroups]) {
    if (a.all_kept) {
        for (int v = 0; v < kGroups; ++v) keep[v] = ~0ull;
        return;
    }
    const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    __m512i c0[kGroups], c1[kGroups], c2[kGroups], c3[kGroups];
    for (int v = 0; v < kGroups; ++v) {
        const std::int64_t block = 16 * (a.first_group + first_group + v);
        c0[v] = _mm512_add_epi32(_mm512_set1_epi32(int(std::uint32_t(block))), lane);
        c1[v] = _mm512_set1_epi32(int(std::uint32_t(a.step)));
        c2[v] = _mm512_set1_epi32(int(std::uint32_t(a.step >> 32)));
        c3[v] = _mm512_set1_epi32(int(a.layer));
    }
    const __m512i mul0 = _mm512_set1_epi32(int(rng::kMul0));
    const __m512i mul1 = _mm512_set1_epi32(int(rng::kMul1));
    std::uint32_t key0 = std::uint32_t(a.seed), key1 = std::uint32_t(a.seed >> 32);
    for (int round = 0; round < rng::kRounds; ++round) {
        const __m512i k0 = _mm512_set1_epi32(int(key0)), k1 = _mm512_set1_epi32(int(key1));
        for (int v = 0; v < kGroups; ++v) {
            __m512i hi0, lo0, hi1, lo1;
            mul_hi_lo(c0[v], mul0, hi0, lo0);
            mul_hi_lo(c2[v], mul1, hi1, lo1);
            c0[v] = _mm512_xor_si512(_mm512_xor_si512(hi1, c1[v]), k0);
            c2[v] = _mm512_xor_si512(_mm512_xor_si512(hi0, c3[v]), k1);
            c1[v] = lo1;
            c3[v] = lo0;
        }
        key0 += rng::kWeyl0;
        key1 += rng::kWeyl1;
    }
    const __m512i below = _mm512_set1_epi32(int(a.below));
    for (int v = 0; v < kGroups; ++v)
        keep[v] = _pdep_u64(_mm512_cmplt_epu32_mask(c0[v], below), 0x1111111111111111ull) |
                  _pdep_u64(_mm512_cmplt_epu32_mask(c1[v], below), 0x2222222222222222ull) |
                  _pdep_u64(_mm512_cmplt_epu32_mask(c2[v], below), 0x4444444444444444ull) |
                  _pdep_u64(_mm512_cmplt_epu32_mask(c3[v], below), 0x8888888888888888ull);
}

}  // namespace

void apply(const float* x, float* y, std::int64_t n, const Apply& a, std::int64_t g0,
           std::int64_t g1) {
    const __m512 factor = _mm512_set1_ps(a.factor), beta = _mm512_set1_ps(a.beta);
    std::uint64_t keep[kGroups];
    for (std::int64_t g = g0; g < g1; ++g) {
        const int v = int((g - g0) % kGroups);
        if (v == 0) keep_bits(a, g, keep);  // past g1 (or n) the bits are drawn and not used
        const std::int64_t i0 = g * kGroup;
        for (int k = 0; k < 4; ++k) {
            const std::int64_t start = i0 + 16 * k;
            if (start >= n) break;
            const std::int64_t left = n - start;
            const __mmask16 in = left >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << left) - 1u);
            const __mmask16 kept = __mmask16(keep[v] >> (16 * k)) & in;
            const __m512 v = _mm512_maskz_mul_ps(kept, _mm512_maskz_loadu_ps(kept, x + start),
                                                 factor);
            if (a.beta == 0.f)
                _mm512_mask_storeu_ps(y + start, in, v);
            else
                _mm512_mask_storeu_ps(
                    y + start, in,
                    _mm512_fmadd_ps(beta, _mm512_maskz_loadu_ps(in, y + start), v));
        }
    }
}

}  // namespace convnet::dropout_avx512
