// Pooling's plane loops in AVX-512 registers (pool_kernels.h); built with -mavx512f (CMake)
// and called only where the CPU has it. Forward, each vector holds 16 outputs of one row: for
// every input row of the window and every column offset kx, the 16 inputs at offset kx are one
// masked load (stride 1) or the even lanes of two (stride 2); columns outside the image read as
// -inf; the running maximum, its index and whether another input equalled it stay in registers.
// Planes at most 16 wide (the small late layers) hold one input row per vector instead: down the
// window's rows first, then each output's lane gathers its columns by permutes, for max and
// average pooling alike; average pooling's backward gathers the shares of the windows covering
// each column the same way.
#include <immintrin.h>

// GCC 12 warns inside its own permute intrinsics (their _mm512_undefined_ps operand).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

void max_plane(const float* x, float* y, std::int32_t* winners, const Plane& g) {
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

void narrow_columns(const Plane& g, NarrowColumns* c) {
    for (int kx = 0; kx < g.size_w; ++kx) {
        unsigned inside = 0;
        for (int l = 0; l < 16; ++l) {
            const std::int64_t column = g.start_w + std::int64_t(l) * g.stride_w + kx;
            const bool in = l < g.ow && column >= 0 && column < g.w;
            c->index[kx][l] = in ? std::int32_t(column) : 0;
            if (in) inside |= 1u << l;
        }
        c->inside[kx] = std::uint16_t(inside);
    }
    for (int l = 0; l < 16; ++l) {
        int count = 0;
        for (int kx = 0; kx < g.size_w; ++kx) count += (c->inside[kx] >> l) & 1;
        c->cols_in[l] = float(count > 0 ? count : 1);
    }
}

void narrow_avg_plane(const float* x, float* y, const Plane& g, const NarrowColumns& c) {
    const __mmask16 row_mask = __mmask16((1u << g.w) - 1u);
    const __mmask16 out_mask = __mmask16((1u << g.ow) - 1u);
    const __m512 cols_in = _mm512_loadu_ps(c.cols_in);
    // -0 is the sum's identity: -0 + v is v for every v, +0 and -0 included.
    const __m512 none = _mm512_set1_ps(-0.f);
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        const std::int64_t y0 = g.row_lo[oy], y1 = g.row_hi[oy];
        __m512 down = _mm512_maskz_loadu_ps(row_mask, x + y0 * g.w);
        for (std::int64_t iy = y0 + 1; iy < y1; ++iy)
            down = _mm512_add_ps(down, _mm512_maskz_loadu_ps(row_mask, x + iy * g.w));
        __m512 out = none;
        for (int kx = 0; kx < g.size_w; ++kx) {
            const __m512i index = _mm512_loadu_si512(c.index[kx]);
            out = _mm512_mask_add_ps(out, c.inside[kx], out, _mm512_permutexvar_ps(index, down));
        }
        const __m512 count = _mm512_mul_ps(_mm512_set1_ps(float(y1 - y0)), cols_in);
        _mm512_mask_storeu_ps(y + oy * g.ow, out_mask, _mm512_div_ps(out, count));
    }
}

void narrow_max_plane(const float* x, float* y, std::int32_t* winners, const Plane& g,
                      const NarrowColumns& c) {
    const __mmask16 row_mask = __mmask16((1u << g.w) - 1u);
    const __mmask16 out_mask = __mmask16((1u << g.ow) - 1u);
    const __m512 lowest = _mm512_set1_ps(kMinusInfinity);
    const __m512i column = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i none = _mm512_set1_epi32(-1), one = _mm512_set1_epi32(1);
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        // Down the window's rows, per column: the largest value, its index, whether another
        // row equalled it (a column of -inf counts as tied, as in the scalar pass).
        __m512 down = lowest;
        __m512i down_at = none;
        __mmask16 down_tie = 0;
        for (std::int64_t iy = g.row_lo[oy]; iy < g.row_hi[oy]; ++iy) {
            const __m512 v = _mm512_mask_loadu_ps(lowest, row_mask, x + iy * g.w);
            const __mmask16 gt = _mm512_cmp_ps_mask(v, down, _CMP_GT_OQ);
            const __mmask16 eq = _mm512_cmp_ps_mask(v, down, _CMP_EQ_OQ);
            down_tie = __mmask16((down_tie | eq) & ~gt);
            down_at = _mm512_mask_add_epi32(down_at, gt, _mm512_set1_epi32(std::int32_t(iy * g.w)),
                                            column);
            down = _mm512_mask_mov_ps(down, gt, v);
        }
        const __m512i down_tied = _mm512_maskz_mov_epi32(down_tie, one);
        // Across the window's in-image columns, each output's lane gathering them by permutes.
        __m512 best = lowest;
        __m512i at = none;
        __mmask16 tie = 0;
        for (int kx = 0; kx < g.size_w; ++kx) {
            const __m512i index = _mm512_loadu_si512(c.index[kx]);
            const __m512 v = _mm512_permutexvar_ps(index, down);
            const __mmask16 inside = c.inside[kx];
            const __mmask16 gt = _mm512_mask_cmp_ps_mask(inside, v, best, _CMP_GT_OQ);
            const __mmask16 eq = _mm512_mask_cmp_ps_mask(inside, v, best, _CMP_EQ_OQ);
            const __mmask16 column_tie =
                _mm512_test_epi32_mask(_mm512_permutexvar_epi32(index, down_tied), one);
            tie = __mmask16((column_tie & gt) | ((tie | eq) & ~gt));
            at = _mm512_mask_mov_epi32(at, gt, _mm512_permutexvar_epi32(index, down_at));
            best = _mm512_mask_mov_ps(best, gt, v);
        }
        _mm512_mask_storeu_ps(y + oy * g.ow, out_mask, best);
        if (winners)
            _mm512_mask_storeu_epi32(winners + oy * g.ow, out_mask,
                                     _mm512_mask_mov_epi32(at, tie, none));
    }
}

void avg_plane_backward(const float* dy, float* dx, float beta, const AvgBackwardPlane& g,
                        float* across) {
    const __mmask16 row_mask = __mmask16((1u << g.w) - 1u);
    const __mmask16 out_mask = __mmask16((1u << g.ow) - 1u);
    // Lanes past ow divide 0 by 1: lane ow is the zero that `none` (index ow) gathers.
    const __m512 cols_in = _mm512_mask_loadu_ps(_mm512_set1_ps(1.f), out_mask, g.cols_in);
    __m512i cover[kNarrowWidth];
    for (std::int64_t k = 0; k < g.col_depth; ++k)
        cover[k] = _mm512_maskz_loadu_epi32(row_mask, g.col_cover + k * g.w);
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        const __m512 share = _mm512_div_ps(_mm512_maskz_loadu_ps(out_mask, dy + oy * g.ow),
                                           _mm512_mul_ps(_mm512_set1_ps(g.rows_in[oy]), cols_in));
        __m512 row = _mm512_add_ps(_mm512_setzero_ps(), _mm512_permutexvar_ps(cover[0], share));
        for (std::int64_t k = 1; k < g.col_depth; ++k)
            row = _mm512_add_ps(row, _mm512_permutexvar_ps(cover[k], share));
        _mm512_storeu_ps(across + oy * 16, row);
    }
    for (std::int64_t iy = 0; iy < g.h; ++iy) {
        float* drow = dx + iy * g.w;
        __m512 d = beta == 0.f ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(row_mask, drow);
        if (beta != 0.f && beta != 1.f) d = _mm512_mul_ps(d, _mm512_set1_ps(beta));
        for (std::int64_t k = 0; k < g.row_depth; ++k) {
            const std::int32_t oy = g.row_cover[k * g.h + iy];
            if (oy == g.oh) break;
            d = _mm512_add_ps(d, _mm512_loadu_ps(across + oy * 16));
        }
        _mm512_mask_storeu_ps(drow, row_mask, d);
    }
}

}  // namespace convnet::pool_avx512
