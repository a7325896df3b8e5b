// The inner loops of the direct convolution (direct_conv.h) in AVX-512, this file alone compiled
// with -mavx512f -mfma (CMakeLists.txt) and called only after the CPU says it has AVX-512F.
// It includes no header with inline functions it calls (only <immintrin.h>, <cstdint>, <utility>
// for integer_sequence, and avx512_local.h, whose helpers have internal linkage), so no inline
// function of a shared header is compiled here with AVX-512 instructions and then picked by the
// linker for the rest of the library.
//
// Registers hold a tile of outputs for 16 or 32 output channels (one or two 16-float vectors,
// "nv"): in the forward tile, R positions of one output row; in the filter-gradient tile, TI x TJ
// kernel taps. Each step of the inner loop loads the nv weight (or gradient) vectors once and
// broadcasts one input value per tile row, so each load feeds several FMAs and the FMA units,
// not the loads, set the pace.
#include <immintrin.h>

// GCC 12 warns inside its own unpack intrinsics (their _mm512_undefined_ps operand).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <cstdint>
#include <utility>

#include "cpu/avx512_local.h"
#include "cpu/direct_conv_kernels.h"

namespace convnet::direct_conv::avx512 {

#define CONVNET_KERNEL_INLINE __attribute__((always_inline)) inline

namespace {


// One input value in every lane, broadcast straight from memory. Written with _mm512_set1_ps,
// GCC sees that the tiles' sliding windows load each value again one tap later, keeps it in a
// register and broadcasts register to register instead: a shuffle on port 5, which is also one
// of the two AVX-512 FMA ports, so a tile with two FMAs per broadcast ran at 2/3 of the FMA
// rate. A broadcast from memory is a load alone. The address goes in as a register and a
// constant offset, not as a memory operand: with one, GCC must assume the asm may read the
// accumulator array and writes it back to the stack before every broadcast. The kernels only
// read memory that nothing writes while they run, so the asm needs no memory dependence.
template <int Offset>
inline __m512 broadcast(const float* base) {
    __m512 v;
    asm("vbroadcastss %c2(%1), %0" : "=v"(v) : "r"(base), "i"(Offset * 4));
    return v;
}

// for_each<N>(f) calls f(std::integral_constant<int, i>) for i < N: a loop whose index is a
// compile-time constant (broadcast's offset).
template <typename F, int... I>
inline void for_each_index(F&& f, std::integer_sequence<int, I...>) {
    (f(std::integral_constant<int, I>{}), ...);
}
template <int N, typename F>
inline void for_each(F&& f) {
    for_each_index(f, std::make_integer_sequence<int, N>{});
}

// The taps of one kernel row: NV weight vectors and R input broadcasts each, into acc. KW > 0:
// the row has KW taps, unrolled with the inputs' offsets as constants (no loop counter or
// pointer updates among the FMAs: integer µops may take the FMA ports); KW 0: p.kw taps. Position
// r's tap j reads the tile's column r + j: the columns before SkipL and the last SkipR of the
// R + KW - 1 are known to be padding, and their multiply-adds are left out.
template <int R, int NV, int KW, int SkipL, int SkipR>
CONVNET_KERNEL_INLINE void forward_taps(__m512 (&acc)[R][NV], const float* row, const float*& w,
                                        int kw) {
    auto tap = [&](auto j) {
        __m512 wv[NV];
        for (int v = 0; v < NV; ++v) wv[v] = _mm512_loadu_ps(w + (j * NV + v) * 16);
        for_each<R>([&](auto r) {
            if constexpr (r + j >= SkipL && (SkipR == 0 || r + j < R + KW - 1 - SkipR)) {
                const __m512 x = broadcast<r + j>(row);
                for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(x, wv[v], acc[r][v]);
            }
        });
    };
    if constexpr (KW > 0) {
        for_each<KW>(tap);
        w += KW * NV * 16;
    } else {
        for (int j = 0; j < kw; ++j, ++row, w += NV * 16) tap(std::integral_constant<int, 0>{});
    }
}

// acc[r][v] over p.c input channels and the taps of kernel rows i0 to i1 - 1 for R consecutive
// outputs of one row, starting from zero or (accumulate) from out.
template <int R, int NV, int KW, int SkipL = 0, int SkipR = 0>
void forward_tile_taps(const float* in, const float* w, const Problem& p, int i0, int i1,
                       float* out, bool accumulate) {
    __m512 acc[R][NV];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v)
            acc[r][v] = accumulate ? _mm512_loadu_ps(out + (r * NV + v) * 16) : _mm512_setzero_ps();
    const std::int64_t row_weights = std::int64_t(p.kw) * NV * 16;
    for (int c = 0; c < p.c; ++c) {
        const float* wc = w + (std::int64_t(c) * p.kh + i0) * row_weights;
        const int end = c < p.short_from ? i1 : smaller(i1, p.kh - 1);
        for (int i = i0; i < end; ++i)
            forward_taps<R, NV, KW, SkipL, SkipR>(acc, in + c * p.channel_stride + i * p.wp, wc,
                                                  p.kw);
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) _mm512_storeu_ps(out + (r * NV + v) * 16, acc[r][v]);
}

// A KW-wide kernel with KW/2 padding columns where the tile touches the row's ends (the shipped
// nets' "same" convolutions): the taps that read them are left out. Two-vector tiles only, to
// bound the instantiations; the shipped nets' layers all have 32 or more filters.
template <int R, int NV, int KW>
void forward_tile_edges(const float* in, const float* w, const Problem& p, int x0, int i0, int i1,
                        float* out, bool accumulate) {
    constexpr int H = KW / 2;
    const bool left = NV == 2 && x0 == 0 && p.left >= H;
    const bool right = NV == 2 && x0 + R + H >= p.left + p.in_w;
    if (left && right)
        return forward_tile_taps<R, NV, KW, H, H>(in, w, p, i0, i1, out, accumulate);
    if (left) return forward_tile_taps<R, NV, KW, H, 0>(in, w, p, i0, i1, out, accumulate);
    if (right) return forward_tile_taps<R, NV, KW, 0, H>(in, w, p, i0, i1, out, accumulate);
    return forward_tile_taps<R, NV, KW>(in, w, p, i0, i1, out, accumulate);
}

// The kernel widths of the shipped nets (5x5 and 3x3) get their own unrolled loops.
template <int R, int NV>
void forward_tile(const float* in, const float* w, const Problem& p, int x0, int i0, int i1,
                  float* out, bool accumulate) {
    switch (p.kw) {
        case 5: return forward_tile_edges<R, NV, 5>(in, w, p, x0, i0, i1, out, accumulate);
        case 3: return forward_tile_edges<R, NV, 3>(in, w, p, x0, i0, i1, out, accumulate);
        default: return forward_tile_taps<R, NV, 0>(in, w, p, i0, i1, out, accumulate);
    }
}

// dw[c][i][j0 + b][lanes] += sum over outputs of in(c)[y + i][x + j0 + b] * dy[y][x], for the TI
// kernel rows (c, i) numbered i * p.c + c from row0 (direct_conv_kernels.h), over the output rows
// for which some row of the tile reads a data row, not a padding row.
template <int TI, int TJ, int NV>
void filter_tile(const float* in, const float* dy, const Problem& p, int row0, int j0, float* dw,
                 const Images& images) {
    __m512 acc[TI][TJ][NV];
    for (int a = 0; a < TI; ++a)
        for (int b = 0; b < TJ; ++b)
            for (int v = 0; v < NV; ++v) acc[a][b][v] = _mm512_setzero_ps();
    std::int64_t rows[TI];  // offsets of the tile's kernel rows in an image's padded input
    std::int64_t dw_rows[TI];  // and of their taps in dw
    for (int a = 0; a < TI; ++a) {
        const int i = (row0 + a) / p.c, c = (row0 + a) % p.c;
        rows[a] = c * p.channel_stride + i * p.wp + j0;
        dw_rows[a] = (std::int64_t(c) * p.kh + i) * p.kw + j0;
    }
    // Output row oy reads padded row oy + i; rows top .. top + in_h - 1 hold data.
    const int first_i = row0 / p.c, last_i = (row0 + TI - 1) / p.c;
    const int oy0 = int(larger(0, p.top - last_i));
    const int oy1 = int(smaller(p.oh, p.top + p.in_h - first_i));
    // Output column ox: taps b from SkipL on and before TJ - SkipR read data columns.
    auto column = [&](const float* g, const float* src, auto skip_l, auto skip_r) {
        __m512 gv[NV];
        for (int v = 0; v < NV; ++v) gv[v] = _mm512_loadu_ps(g + v * 16);
        for (int a = 0; a < TI; ++a)
            for_each<TJ>([&](auto b) {
                if constexpr (b >= skip_l && b < TJ - skip_r) {
                    const __m512 x = broadcast<b>(src + rows[a]);
                    for (int v = 0; v < NV; ++v)
                        acc[a][b][v] = _mm512_fmadd_ps(x, gv[v], acc[a][b][v]);
                }
            });
    };
    using Zero = std::integral_constant<int, 0>;
    // A whole odd kernel row with kw/2 padding columns on each side (the shipped nets' "same"
    // convolutions): the first and last kw/2 outputs of a row leave out the taps that read them.
    constexpr int H = TJ / 2;
    const bool edges = TJ % 2 == 1 && TJ == p.kw && p.left == H && p.in_w == p.ow && p.ow > TJ;
    for (int image = 0; image < images.count; ++image, in += images.in_stride,
             dy += images.dy_stride)
    for (int oy = oy0; oy < oy1; ++oy) {
        const float* g = dy + std::int64_t(oy) * p.ow * NV * 16;
        const float* src = in + std::int64_t(oy) * p.wp;
        if (!edges) {
            for (int ox = 0; ox < p.ow; ++ox) column(g + ox * NV * 16, src + ox, Zero{}, Zero{});
            continue;
        }
        for_each<H>([&](auto ox) {
            column(g + ox * NV * 16, src + ox, std::integral_constant<int, H - ox>{}, Zero{});
        });
        for (int ox = H; ox < p.ow - H; ++ox) column(g + ox * NV * 16, src + ox, Zero{}, Zero{});
        for_each<H>([&](auto k) {
            const int ox = p.ow - H + k;
            column(g + ox * NV * 16, src + ox, Zero{}, std::integral_constant<int, k + 1>{});
        });
    }
    for (int a = 0; a < TI; ++a)
        for (int b = 0; b < TJ; ++b) {
            float* d = dw + (dw_rows[a] + b) * NV * 16;
            for (int v = 0; v < NV; ++v)
                _mm512_storeu_ps(d + v * 16, _mm512_add_ps(_mm512_loadu_ps(d + v * 16), acc[a][b][v]));
        }
}

// thin_row_tile (direct_conv_kernels.h) for C channels and R rows. V vectors per row (1 or 2,
// width > 16). Guard: some of the tile's rows meet padding rows, whose taps are left out.
template <int C, int R, int V, bool Guard>
void thin_tile_rows(const float* in, const float* w, const Problem& p, int y0, float* out,
                    std::int64_t out_row, std::int64_t out_channel, int width, float beta) {
    __m512 acc[R][V][C];
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v)
            for (int c = 0; c < C; ++c) acc[r][v][c] = _mm512_setzero_ps();
    for (int k = 0; k < p.c; ++k)
        for (int i = 0; i < p.kh; ++i) {
            // Output row y0 + r reads padded row y0 + r + i: data rows are top .. top + in_h - 1.
            const int r_lo = Guard ? int(larger(0, p.top - y0 - i)) : 0;
            const int r_hi = Guard ? int(smaller(R, p.top + p.in_h - y0 - i)) : R;
            const float* src = in + k * p.channel_stride + std::int64_t(i) * p.wp;
            const float* wk = w + (std::int64_t(k) * p.kh + i) * p.kw * C;
            for (int j = 0; j < p.kw; ++j, wk += C) {
                __m512 wv[C];
                for_each<C>([&](auto c) { wv[c] = broadcast<c>(wk); });
                for_each<R>([&](auto r) {
                    if (Guard && (r < r_lo || r >= r_hi)) return;
                    for (int v = 0; v < V; ++v) {
                        // Loaded once into a register: left to itself, GCC folds the load into
                        // each channel's FMA as a memory operand, C loads instead of one, and
                        // the loads (most crossing a cache line) set the pace.
                        __m512 x = _mm512_loadu_ps(src + r * p.wp + j + 16 * v);
                        asm("" : "+v"(x));
                        for (int c = 0; c < C; ++c)
                            acc[r][v][c] = _mm512_fmadd_ps(x, wv[c], acc[r][v][c]);
                    }
                });
            }
        }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < V; ++v) {
            const int n = width - 16 * v < 16 ? width - 16 * v : 16;
            const __mmask16 mask = __mmask16((1u << n) - 1u);
            for (int c = 0; c < C; ++c) {
                float* dst = out + c * out_channel + r * out_row + 16 * v;
                __m512 value = acc[r][v][c];
                if (beta != 0.f)
                    value = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, dst),
                                            value);
                _mm512_mask_storeu_ps(dst, mask, value);
            }
        }
}

template <int C, int R>
void thin_tile(const float* in, const float* w, const Problem& p, int y0, float* out,
               std::int64_t out_row, std::int64_t out_channel, int width, float beta) {
    const bool guard = y0 < p.top || y0 + R - 1 + p.kh - 1 >= p.top + p.in_h;
    if (width > 16) {
        if (guard)
            return thin_tile_rows<C, R, 2, true>(in, w, p, y0, out, out_row, out_channel, width,
                                                 beta);
        return thin_tile_rows<C, R, 2, false>(in, w, p, y0, out, out_row, out_channel, width, beta);
    }
    if (guard)
        return thin_tile_rows<C, R, 1, true>(in, w, p, y0, out, out_row, out_channel, width, beta);
    thin_tile_rows<C, R, 1, false>(in, w, p, y0, out, out_row, out_channel, width, beta);
}

// Tables of instantiations, so that a run-time tile size picks a compile-time kernel.
using ForwardTile = void (*)(const float*, const float*, const Problem&, int, int, int, float*,
                             bool);
template <int NV, int... R>
struct ForwardTable {
    static constexpr ForwardTile at[] = {&forward_tile<R + 1, NV>...};
};
template <int NV, int... R>
constexpr const ForwardTile* forward_table(std::integer_sequence<int, R...>) {
    return ForwardTable<NV, R...>::at;
}

using FilterTile = void (*)(const float*, const float*, const Problem&, int, int, float*,
                            const Images&);
template <int TI, int NV, int... TJ>
struct FilterRow {
    static constexpr FilterTile at[] = {&filter_tile<TI, TJ + 1, NV>...};
};
template <int TI, int NV, int... TJ>
constexpr const FilterTile* filter_row(std::integer_sequence<int, TJ...>) {
    return FilterRow<TI, NV, TJ...>::at;
}
template <int NV, int... TI>
struct FilterTable {
    static constexpr const FilterTile* at[] = {
        filter_row<TI + 1, NV>(std::make_integer_sequence<int, kMaxTapsJ>{})...};
};
template <int NV, int... TI>
constexpr const FilterTile* const* filter_table(std::integer_sequence<int, TI...>) {
    return FilterTable<NV, TI...>::at;
}

using ThinTile = void (*)(const float*, const float*, const Problem&, int, float*, std::int64_t,
                          std::int64_t, int, float);
template <int... R>
struct ThinTable {
    static constexpr ThinTile at[] = {&thin_tile<kThinChannels, R + 1>...};
};
template <int... R>
constexpr const ThinTile* thin_table(std::integer_sequence<int, R...>) {
    return ThinTable<R...>::at;
}

// r[i] = column i of the 16 x 16 matrix whose row j is r[j] (in place).
inline void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    // Now r[4a + b] holds, in each 128-bit lane q, element b of rows 4a..4a+3 restricted to
    // columns 4q..4q+3. Gather the lanes across the four groups.
    for (int b = 0; b < 4; ++b) {
        const __m512 x0 = _mm512_shuffle_f32x4(r[b], r[4 + b], 0x88);   // lanes 0,2 of each
        const __m512 x1 = _mm512_shuffle_f32x4(r[b], r[4 + b], 0xdd);   // lanes 1,3
        const __m512 x2 = _mm512_shuffle_f32x4(r[8 + b], r[12 + b], 0x88);
        const __m512 x3 = _mm512_shuffle_f32x4(r[8 + b], r[12 + b], 0xdd);
        t[b] = _mm512_shuffle_f32x4(x0, x2, 0x88);        // column block 0
        t[4 + b] = _mm512_shuffle_f32x4(x1, x3, 0x88);    // column block 1
        t[8 + b] = _mm512_shuffle_f32x4(x0, x2, 0xdd);    // column block 2
        t[12 + b] = _mm512_shuffle_f32x4(x1, x3, 0xdd);   // column block 3
    }
    for (int i = 0; i < 16; ++i) r[i] = t[i];
}

}  // namespace

void pad_copy(const float* src, std::int64_t channels, std::int64_t h, std::int64_t w, float* dst,
              std::int64_t hp, std::int64_t wp, std::int64_t top, std::int64_t left) {
    for (std::int64_t k = 0; k < channels; ++k)
        for (std::int64_t y = 0; y < hp; ++y) {
            float* row = dst + (k * hp + y) * wp;
            const std::int64_t sy = y - top;
            const bool inside = sy >= 0 && sy < h;
            // Column x of the row reads source column x - left of row sy.
            const float* from = src + (k * h + sy) * w - left;
            for (std::int64_t x0 = 0; x0 < wp; x0 += 16) {
                const std::int64_t lo = larger(0, left - x0);
                const std::int64_t hi = smaller(16, left + w - x0);
                const __mmask16 load = inside && hi > lo
                                           ? __mmask16(((1u << hi) - 1u) & ~((1u << lo) - 1u))
                                           : __mmask16(0);
                const std::int64_t n = smaller(16, wp - x0);
                _mm512_mask_storeu_ps(row + x0, __mmask16((1u << n) - 1u),
                                      _mm512_maskz_loadu_ps(load, from + x0));
            }
        }
}

void store_transposed(const float* buf, int count, int lanes, const float* bias, float beta,
                      float* out, std::int64_t out_stride) {
    for (int x0 = 0; x0 < count; x0 += 16) {
        const int n = count - x0 < 16 ? count - x0 : 16;
        const __mmask16 mask = __mmask16((1u << n) - 1u);
        for (int l0 = 0; l0 < lanes; l0 += 16) {
            __m512 r[16];
            for (int j = 0; j < 16; ++j)
                r[j] = j < n ? _mm512_loadu_ps(buf + std::int64_t(x0 + j) * lanes + l0)
                             : _mm512_setzero_ps();
            transpose16(r);
            for (int l = 0; l < 16; ++l) {
                float* dst = out + std::int64_t(l0 + l) * out_stride + x0;
                __m512 v = r[l];
                if (bias) v = _mm512_add_ps(v, _mm512_set1_ps(bias[l0 + l]));
                if (beta != 0.f)
                    v = _mm512_fmadd_ps(_mm512_set1_ps(beta), _mm512_maskz_loadu_ps(mask, dst), v);
                _mm512_mask_storeu_ps(dst, mask, v);
            }
        }
    }
}

void transpose_to_positions(const float* src, std::int64_t src_stride, int lanes,
                            std::int64_t positions, float* dst) {
    for (std::int64_t q0 = 0; q0 < positions; q0 += 16) {
        const std::int64_t n = positions - q0 < 16 ? positions - q0 : 16;
        const __mmask16 mask = __mmask16((1u << n) - 1u);
        for (int l0 = 0; l0 < lanes; l0 += 16) {
            __m512 r[16];
            for (int l = 0; l < 16; ++l)
                r[l] = _mm512_maskz_loadu_ps(mask, src + std::int64_t(l0 + l) * src_stride + q0);
            transpose16(r);
            for (std::int64_t q = 0; q < n; ++q) _mm512_storeu_ps(dst + (q0 + q) * lanes + l0, r[q]);
        }
    }
}

void add_position_sums(const float* dyt, int lanes, std::int64_t positions, float* sums) {
    for (int l0 = 0; l0 < lanes; l0 += 16) {
        // Four running sums so that the additions are not one chain of dependent adds.
        __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                         _mm512_setzero_ps()};
        std::int64_t q = 0;
        for (; q + 4 <= positions; q += 4)
            for (int k = 0; k < 4; ++k)
                acc[k] = _mm512_add_ps(acc[k], _mm512_loadu_ps(dyt + (q + k) * lanes + l0));
        for (; q < positions; ++q)
            acc[0] = _mm512_add_ps(acc[0], _mm512_loadu_ps(dyt + q * lanes + l0));
        const __m512 total = _mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3]));
        _mm512_storeu_ps(sums + l0, _mm512_add_ps(_mm512_loadu_ps(sums + l0), total));
    }
}

void forward_row_tile(int nv, int r, const float* in, const float* w, const Problem& p, int x0,
                      int first_row, int end_row, float* out, bool accumulate) {
    static const ForwardTile* const one = forward_table<1>(std::make_integer_sequence<int, kMaxRow1>{});
    static const ForwardTile* const two = forward_table<2>(std::make_integer_sequence<int, kMaxRow2>{});
    (nv == 2 ? two : one)[r - 1](in, w, p, x0, first_row, end_row, out, accumulate);
}

void thin_row_tile(int rows, const float* in, const float* w, const Problem& p, int y0,
                   float* out, std::int64_t out_row, std::int64_t out_channel, int width,
                   float beta) {
    static const ThinTile* const table = thin_table(std::make_integer_sequence<int, kThinRows>{});
    table[rows - 1](in, w, p, y0, out, out_row, out_channel, width, beta);
}

void filter_grad_tile(int nv, int ti, int tj, const float* in, const float* dy, const Problem& p,
                      int row0, int j0, float* dw, const Images& images) {
    static const FilterTile* const* const one =
        filter_table<1>(std::make_integer_sequence<int, kMaxTapsI>{});
    static const FilterTile* const* const two =
        filter_table<2>(std::make_integer_sequence<int, kMaxTapsI>{});
    (nv == 2 ? two : one)[ti - 1][tj - 1](in, dy, p, row0, j0, dw, images);
}

}  // namespace convnet::direct_conv::avx512
