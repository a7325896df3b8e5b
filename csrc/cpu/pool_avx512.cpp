// Max pooling's plane loop in AVX-512 registers (pool_kernels.h); built with -mavx512f (CMake)
// and called only where the CPU has it. Each vector holds 16 outputs of one row: for every input
// row of the window and every column offset kx, the 16 inputs at offset kx are one masked load
// (stride 1) or the even lanes of two (stride 2), columns outside the image read as -inf; the
// running maximum, its index and whether another input equalled it stay in registers.
#include <immintrin.h>

#include "cpu/avx512_local.h"
#include "cpu/pool_kernels.h"

namespace convnet::pool_avx512 {

namespace {

// The lanes l of a 16-column run starting at column c0 with 0 <= c0 + l < w.
inline __mmask16 in_image(std::int64_t c0, std::int64_t w) {
    const std::int64_t lo = larger(0, -c0);
    const std::int64_t hi = smaller(16, w - c0);
    if (hi <= lo) return 0;
    return __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

}  // namespace

void max_plane(const float* x, float* y, std::int32_t* winners, const MaxPlane& g) {
    const int s = g.stride_w;
    const __m512i lane_column = s == 2 ? _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20,
                                                           22, 24, 26, 28, 30)
                                       : _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                                                           12, 13, 14, 15);
    const __m512 lowest = _mm512_set1_ps(kMinusInfinity);
    for (std::int64_t o0 = 0; o0 < g.ow; o0 += 16) {
        const std::int64_t outs = smaller(16, g.ow - o0);
        const __mmask16 out_mask = __mmask16((1u << outs) - 1u);
        // Per column offset kx: lane 0's column, and which lanes of its one or two 16-column
        // loads lie in the image (the others are never touched and read as -inf).
        std::int64_t first[kMaxWindowColumns];
        __mmask16 lo_mask[kMaxWindowColumns], hi_mask[kMaxWindowColumns];
        for (int kx = 0; kx < g.size_w; ++kx) {
            first[kx] = s * o0 + g.start_w + kx;
            lo_mask[kx] = in_image(first[kx], g.w);
            hi_mask[kx] = in_image(first[kx] + 16, g.w);
        }
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
            __m512 best = lowest;
            __m512i at = _mm512_set1_epi32(-1);
            __mmask16 tie = 0;
            for (std::int64_t iy = g.row_lo[oy]; iy < g.row_hi[oy]; ++iy) {
                const float* row = x + iy * g.w;
                for (int kx = 0; kx < g.size_w; ++kx) {
                    const std::int64_t c0 = first[kx];
                    const __m512 a = _mm512_mask_loadu_ps(lowest, lo_mask[kx], row + c0);
                    const __m512 v =
                        s == 1 ? a
                               : _mm512_permutex2var_ps(
                                     a, lane_column,
                                     _mm512_mask_loadu_ps(lowest, hi_mask[kx], row + c0 + 16));
                    const __mmask16 gt = _mm512_cmp_ps_mask(v, best, _CMP_GT_OQ);
                    const __mmask16 eq = _mm512_cmp_ps_mask(v, best, _CMP_EQ_OQ);
                    tie = __mmask16((tie | eq) & ~gt);
                    at = _mm512_mask_add_epi32(at, gt, _mm512_set1_epi32(std::int32_t(iy * g.w + c0)),
                                               lane_column);
                    best = _mm512_mask_mov_ps(best, gt, v);
                }
            }
            _mm512_mask_storeu_ps(y + oy * g.ow + o0, out_mask, best);
            if (winners)
                _mm512_mask_storeu_epi32(winners + oy * g.ow + o0, out_mask,
                                         _mm512_mask_mov_epi32(at, tie, _mm512_set1_epi32(-1)));
        }
    }
}

}  // namespace convnet::pool_avx512
