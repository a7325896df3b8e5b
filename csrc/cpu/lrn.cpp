// Cross-map LRN on the CPU, threaded over (image, block of pixels), each block taken map by map.
// Sums run over a block's pixels of each map, so the inner loops are contiguous and vectorise;
// windows are summed directly (no running sum, whose subtractions would lose precision in float).
#include <algorithm>
#include <cmath>

#include "core/tensor.h"
#include "cpu/blas.h"
#include "cpu/vector_clones.h"
#include "math/norm_math.h"
#include "ops/lrn.h"

namespace convnet {

namespace {
// Pixels summed at once: a tile of window sums that stays in registers.
constexpr std::int64_t kSumTile = 64;
// An image is taken this many pixels at a time (AlexNet's planes whole), map by map: the maps a
// window needs are kept in rings of `size` rows (80 KB each for size 5, in L2), so each map's
// pixels are one contiguous run and the image is read and written front to back. Blocks of 256
// pixels keeping every map's rows read 96 or 256 short runs per block: forward AlexNet's lrn1
// 5.6 -> 4.9 ms, lrn2 4.0 -> 3.5 ms on a 2-core AMD EPYC.
constexpr std::int64_t kBlockPixels = 4096;
// The rings' rows lie this many T apart, not a multiple of 4 KB (which would put them all in the
// same cache sets).
constexpr std::int64_t kRingStride = kBlockPixels + 32;

// d[i] += s[i], and d[i] = s[i], for i < n <= kSumTile. A whole tile is a loop of constant
// length: with a run-time length GCC sums the window's rows in scalar code instead.
template <typename T>
CONVNET_ALWAYS_INLINE void add_row(T* __restrict d, const T* __restrict s, std::int64_t n) {
    if (n == kSumTile)
        for (std::int64_t i = 0; i < kSumTile; ++i) d[i] += s[i];
    else
        for (std::int64_t i = 0; i < n; ++i) d[i] += s[i];
}
template <typename T>
CONVNET_ALWAYS_INLINE void copy_row(T* __restrict d, const T* __restrict s, std::int64_t n) {
    if (n == kSumTile)
        for (std::int64_t i = 0; i < kSumTile; ++i) d[i] = s[i];
    else
        for (std::int64_t i = 0; i < n; ++i) d[i] = s[i];
}

// Rows of `count` pixels for maps 0, 1, 2, ... of which the last `rows` are kept: map m's row is
// slot m % rows. Windows never move back, so a window's maps are always among the last `rows`.
template <typename T>
struct Ring {
    T* base;
    std::int64_t rows;
    T* row(std::int64_t map) const { return base + map % rows * kRingStride; }
    // sum[i] = 0 + the rows of maps first .. first + width - 1 at pixels i0 + i, i < n, in map
    // order; `slot` is first % rows, worked out once per map rather than by an integer division
    // per row and tile.
    // The first row is copied rather than added to zeros (the same sums: 0 + a == a), so no
    // memset call comes between the tile and the registers: forward and backward 8-12% faster.
    void sum_rows(std::int64_t slot, std::int64_t width, std::int64_t i0, std::int64_t n,
                  T* sum) const {
        copy_row(sum, base + slot * kRingStride + i0, n);
        for (std::int64_t m = 1; m < width; ++m) {
            slot = slot + 1 == rows ? 0 : slot + 1;
            add_row(sum, base + slot * kRingStride + i0, n);
        }
    }
};

// The rows each ring keeps: a window's maps (all of them where the window is wider).
std::int64_t ring_rows(const LrnParams& p, std::int64_t c) {
    return std::min<std::int64_t>(p.size, c);
}

// The squares of x's maps, added as windows reach them.
template <typename T>
struct Squares {
    Ring<T> ring;
    const T* x;
    std::int64_t plane, count, done = 0;  // maps [0, done) squared so far
    void through(std::int64_t last) {
        for (; done <= last; ++done) {
            const T* xs = x + done * plane;
            T* sq = ring.row(done);
            for (std::int64_t i = 0; i < count; ++i) sq[i] = xs[i] * xs[i];
        }
    }
};

// y = x * d^-beta, map by map, each map's window summed tile by tile straight into its output.
template <typename T>
CONVNET_ALWAYS_INLINE void forward_block(const T* x, T* y, std::int64_t plane, std::int64_t count,
                                         T* scratch, std::int64_t c, const LrnParams& p) {
    Squares<T> squares{{scratch, ring_rows(p, c)}, x, plane, count};
    const T alpha = T(p.alpha), k = T(p.k), beta = T(p.beta);
    for (std::int64_t f = 0; f < c; ++f) {
        std::int64_t first, last;
        p.window(f, c, &first, &last);
        squares.through(last);
        const T* xf = x + f * plane;
        T* yf = y + f * plane;
        const std::int64_t slot = first % squares.ring.rows, width = last - first + 1;
        for (std::int64_t i0 = 0; i0 < count; i0 += kSumTile) {
            const std::int64_t n = std::min(kSumTile, count - i0);
            T d[kSumTile];
            squares.ring.sum_rows(slot, width, i0, n, d);
            for (std::int64_t i = 0; i < n; ++i)
                yf[i0 + i] = xf[i0 + i] * pow_neg(k + alpha * d[i], beta);
        }
    }
}

// dx[j] = dy[j] d[j]^-beta - 2 alpha beta x[j] sum_{i : j in W(i)} dy[i] y[i] / d[i], map j by
// map j. The maps i whose windows hold j form a range [lo, hi] that only moves forward; each
// map's d and ratio dy y / d are made once, when the range first reaches it, and kept in rings
// (a map's d is needed again when j reaches it, at most size - 1 maps later). The ratios are
// summed in ascending i, the order of a scatter over the windows.
template <typename T>
CONVNET_ALWAYS_INLINE void backward_block(const T* x, const T* y, const T* dy, T* dx,
                                          std::int64_t plane, std::int64_t count, T* scratch,
                                          std::int64_t c, const LrnParams& p, T beta_acc) {
    const std::int64_t rows = ring_rows(p, c);
    Squares<T> squares{{scratch, rows}, x, plane, count};
    const Ring<T> denoms{scratch + rows * kRingStride, rows};
    const Ring<T> ratios{scratch + 2 * rows * kRingStride, rows};
    const T alpha = T(p.alpha), k = T(p.k), beta = T(p.beta);
    const T coeff = T(-2) * T(p.alpha) * T(p.beta);
    std::int64_t lo = 0, hi = -1, made = 0;  // d and ratio made for maps [0, made)
    for (std::int64_t j = 0; j < c; ++j) {
        std::int64_t first, last;
        for (;; ++lo) {  // the first map whose window reaches j
            p.window(lo, c, &first, &last);
            if (last >= j) break;
        }
        while (hi + 1 < c) {  // the last map whose window starts at or before j
            p.window(hi + 1, c, &first, &last);
            if (first > j) break;
            ++hi;
        }
        for (; made <= hi; ++made) {
            p.window(made, c, &first, &last);
            squares.through(last);
            T* d = denoms.row(made);
            T* r = ratios.row(made);
            const T* dyi = dy + made * plane;
            const T* yi = y + made * plane;
            const std::int64_t slot = first % rows, width = last - first + 1;
            for (std::int64_t i0 = 0; i0 < count; i0 += kSumTile) {
                const std::int64_t n = std::min(kSumTile, count - i0);
                squares.ring.sum_rows(slot, width, i0, n, d + i0);
                for (std::int64_t i = i0; i < i0 + n; ++i) {
                    d[i] = k + alpha * d[i];
                    r[i] = dyi[i] * yi[i] / d[i];
                }
            }
        }
        const T* d = denoms.row(j);
        const T* xj = x + j * plane;
        const T* dyj = dy + j * plane;
        T* dxj = dx + j * plane;
        const std::int64_t slot = lo % rows;
        for (std::int64_t i0 = 0; i0 < count; i0 += kSumTile) {
            const std::int64_t n = std::min(kSumTile, count - i0);
            T acc[kSumTile];
            ratios.sum_rows(slot, hi - lo + 1, i0, n, acc);
            for (std::int64_t i = 0; i < n; ++i) {
                const std::int64_t at = i0 + i;
                const T g = dyj[at] * pow_neg(d[at], beta) + coeff * xj[at] * acc[i];
                dxj[at] = beta_acc == T(0) ? g : beta_acc * dxj[at] + g;
            }
        }
    }
}

// Each block's loops compiled for AVX-512 and the baseline (vector_clones.h): the square roots
// and divisions of d^-0.75 vectorise 16 wide where the CPU allows.
#define CONVNET_LRN_BLOCKS(T, SUFFIX)                                                           \
    CONVNET_VECTOR_CLONES void forward_block_##SUFFIX(const T* x, T* y, std::int64_t plane,     \
                                                      std::int64_t count, T* scratch,           \
                                                      std::int64_t c, const LrnParams& p) {     \
        forward_block(x, y, plane, count, scratch, c, p);                                       \
    }                                                                                           \
    CONVNET_VECTOR_CLONES void backward_block_##SUFFIX(                                         \
        const T* x, const T* y, const T* dy, T* dx, std::int64_t plane, std::int64_t count,     \
        T* scratch, std::int64_t c, const LrnParams& p, T beta_acc) {                           \
        backward_block(x, y, dy, dx, plane, count, scratch, c, p, beta_acc);                    \
    }                                                                                           \
    void forward_block_any(const T* x, T* y, std::int64_t plane, std::int64_t count,            \
                           T* scratch, std::int64_t c, const LrnParams& p) {                    \
        forward_block_##SUFFIX(x, y, plane, count, scratch, c, p);                              \
    }                                                                                           \
    void backward_block_any(const T* x, const T* y, const T* dy, T* dx, std::int64_t plane,     \
                            std::int64_t count, T* scratch, std::int64_t c, const LrnParams& p, \
                            T beta_acc) {                                                       \
        backward_block_##SUFFIX(x, y, dy, dx, plane, count, scratch, c, p, beta_acc);           \
    }
CONVNET_LRN_BLOCKS(float, f32)
CONVNET_LRN_BLOCKS(double, f64)
#undef CONVNET_LRN_BLOCKS

// Runs body(offset of the block's first pixel, pixels, scratch) for every (image, block of
// `pixels` pixels) on the threads, each with `scratch_size` T of its own.
template <typename T, typename Body>
void for_each_block(std::int64_t n, std::int64_t hw, std::int64_t c, std::int64_t pixels,
                    std::int64_t scratch_size, Body&& body) {
    const std::int64_t blocks = (hw + pixels - 1) / pixels;
    const int threads = blas::threads_for(n * blocks);
    Tensor scratch = blas::thread_rows(threads, scratch_size, dtype_of<T>());
    blas::for_each_item(n * blocks, threads, [&](std::int64_t item, int t) {
        const std::int64_t img = item / blocks, i0 = (item % blocks) * pixels;
        body(img * c * hw + i0, std::min(pixels, hw - i0), scratch.data<T>() + t * scratch.dim(1));
    });
}
}  // namespace

template <typename T>
void lrn_forward_cpu(const T* x, T* y, std::int64_t n, std::int64_t c, std::int64_t hw,
                     const LrnParams& p) {
    const std::int64_t rows = ring_rows(p, c);
    for_each_block<T>(n, hw, c, kBlockPixels, rows * kRingStride,
                      [&](std::int64_t at, std::int64_t count, T* scratch) {
                          forward_block_any(x + at, y + at, hw, count, scratch, c, p);
                      });
}

template <typename T>
void lrn_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t c,
                      std::int64_t hw, const LrnParams& p, T beta_acc) {
    const std::int64_t rows = ring_rows(p, c);
    for_each_block<T>(n, hw, c, kBlockPixels, 3 * rows * kRingStride,
                      [&](std::int64_t at, std::int64_t count, T* scratch) {
                          backward_block_any(x + at, y + at, dy + at, dx + at, hw, count, scratch,
                                             c, p, beta_acc);
                      });
}

template void lrn_forward_cpu<float>(const float*, float*, std::int64_t, std::int64_t,
                                     std::int64_t, const LrnParams&);
template void lrn_forward_cpu<double>(const double*, double*, std::int64_t, std::int64_t,
                                      std::int64_t, const LrnParams&);
template void lrn_backward_cpu<float>(const float*, const float*, const float*, float*,
                                      std::int64_t, std::int64_t, std::int64_t, const LrnParams&,
                                      float);
template void lrn_backward_cpu<double>(const double*, const double*, const double*, double*,
                                       std::int64_t, std::int64_t, std::int64_t, const LrnParams&,
                                       double);

}  // namespace convnet
