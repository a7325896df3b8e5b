// Cross-map LRN on the CPU, threaded over (image, block of pixels). Sums run over a block's
// pixels of each channel, so the inner loops are contiguous and vectorise; windows are summed
// directly (no running sum, whose subtractions would lose precision in float).
#include <algorithm>
#include <cmath>

#include "core/tensor.h"
#include "cpu/blas.h"
#include "cpu/vector_clones.h"
#include "math/norm_math.h"
#include "ops/lrn.h"

namespace convnet {

namespace {
// Backward takes an image a block of this many pixels at a time, across all its channels, so that
// the scratch rows (channels x block) stay in cache; AlexNet's 96 x 55 x 55 would need 1.2 MB each.
constexpr std::int64_t kPixelBlock = 256;

// denom[f][i] = k + alpha * sum_{c in W(f)} x[c][i]^2 for the block's pixels i < count of one
// image (x's planes `plane` apart, the scratch rows `count` apart); sq is scratch.
template <typename T>
CONVNET_ALWAYS_INLINE void denominators(const T* x, std::int64_t plane, std::int64_t count,
                                        T* denom, T* sq, std::int64_t c, const LrnParams& p) {
    for (std::int64_t f = 0; f < c; ++f)
        for (std::int64_t i = 0; i < count; ++i) sq[f * count + i] = x[f * plane + i] * x[f * plane + i];
    const T alpha = T(p.alpha), k = T(p.k);
    for (std::int64_t f = 0; f < c; ++f) {
        std::int64_t first, last;
        p.window(f, c, &first, &last);
        T* d = denom + f * count;
        for (std::int64_t i = 0; i < count; ++i) d[i] = T(0);
        for (std::int64_t j = first; j <= last; ++j) {
            const T* s = sq + j * count;
            for (std::int64_t i = 0; i < count; ++i) d[i] += s[i];
        }
        for (std::int64_t i = 0; i < count; ++i) d[i] = k + alpha * d[i];
    }
}

// Pixels of a block summed at once in forward: a tile of window sums that stays in registers.
constexpr std::int64_t kSumTile = 64;
// Forward takes an image this many pixels at a time (AlexNet's planes whole): its squares need
// only a ring of `size` rows (80 KB for size 5, in L2), so each map's pixels are one contiguous
// run and the image is read and written front to back. Blocks of 256 pixels with every map's
// squares kept read 96 or 256 short runs per block: AlexNet's lrn1 5.6 -> 4.9 ms, lrn2 4.0 ->
// 3.5 ms on a 2-core AMD EPYC.
constexpr std::int64_t kForwardPixels = 4096;
// The ring's rows lie this many T apart, not a multiple of 4 KB (which would put them all in the
// same cache sets).
constexpr std::int64_t kRingStride = kForwardPixels + 32;

// d[i] += s[i] for i < n <= kSumTile. A whole tile is a loop of constant length: with a run-time
// length GCC sums the window's rows in scalar code instead.
template <typename T>
CONVNET_ALWAYS_INLINE void add_row(T* __restrict d, const T* __restrict s, std::int64_t n) {
    if (n == kSumTile)
        for (std::int64_t i = 0; i < kSumTile; ++i) d[i] += s[i];
    else
        for (std::int64_t i = 0; i < n; ++i) d[i] += s[i];
}

// y = x * d^-beta, map by map: the squares of the maps up to the window's last are added to the
// ring as the window slides (windows never move back), and each map's window is summed tile by
// tile straight into its output, the maps in ascending order as before. Backward, which needs
// the denominators twice, keeps them in a row.
template <typename T>
CONVNET_ALWAYS_INLINE void forward_block(const T* x, T* y, std::int64_t plane, std::int64_t count,
                                         T* ring, std::int64_t c, const LrnParams& p) {
    const std::int64_t ring_rows = std::min<std::int64_t>(p.size, c);
    const T alpha = T(p.alpha), k = T(p.k), beta = T(p.beta);
    std::int64_t squared = 0;  // maps [0, squared) have had their squares put in the ring
    for (std::int64_t f = 0; f < c; ++f) {
        std::int64_t first, last;
        p.window(f, c, &first, &last);
        for (; squared <= last; ++squared) {
            const T* xs = x + squared * plane;
            T* sq = ring + squared % ring_rows * kRingStride;
            for (std::int64_t i = 0; i < count; ++i) sq[i] = xs[i] * xs[i];
        }
        const T* xf = x + f * plane;
        T* yf = y + f * plane;
        const std::int64_t start = first % ring_rows;  // the ring row of the window's first map
        for (std::int64_t i0 = 0; i0 < count; i0 += kSumTile) {
            const std::int64_t n = std::min(kSumTile, count - i0);
            T d[kSumTile] = {};
            for (std::int64_t j = first, r = start; j <= last; ++j) {
                add_row(d, ring + r * kRingStride + i0, n);
                r = r + 1 == ring_rows ? 0 : r + 1;
            }
            for (std::int64_t i = 0; i < n; ++i)
                yf[i0 + i] = xf[i0 + i] * pow_neg(k + alpha * d[i], beta);
        }
    }
}

// dx[j] = dy[j] d[j]^-beta - 2 alpha beta x[j] sum_{i : j in W(i)} dy[i] y[i] / d[i]
template <typename T>
CONVNET_ALWAYS_INLINE void backward_block(const T* x, const T* y, const T* dy, T* dx,
                                          std::int64_t plane, std::int64_t count, T* denom,
                                          T* scratch, T* acc, std::int64_t c, const LrnParams& p,
                                          T beta_acc) {
    const T beta = T(p.beta), coeff = T(-2) * T(p.alpha) * T(p.beta);
    denominators(x, plane, count, denom, scratch, c, p);
    T* ratio = scratch;  // dy * y / d, reusing the squares' rows
    for (std::int64_t f = 0; f < c; ++f)
        for (std::int64_t i = 0; i < count; ++i)
            ratio[f * count + i] = dy[f * plane + i] * y[f * plane + i] / denom[f * count + i];
    for (std::int64_t i = 0; i < c * count; ++i) acc[i] = T(0);
    for (std::int64_t f = 0; f < c; ++f) {
        std::int64_t first, last;
        p.window(f, c, &first, &last);
        const T* r = ratio + f * count;
        for (std::int64_t j = first; j <= last; ++j) {
            T* a = acc + j * count;
            for (std::int64_t i = 0; i < count; ++i) a[i] += r[i];
        }
    }
    for (std::int64_t f = 0; f < c; ++f)
        for (std::int64_t i = 0; i < count; ++i) {
            const std::int64_t at = f * plane + i, q = f * count + i;
            const T g = dy[at] * pow_neg(denom[q], beta) + coeff * x[at] * acc[q];
            dx[at] = beta_acc == T(0) ? g : beta_acc * dx[at] + g;
        }
}

// Each block's loops compiled for AVX-512 and the baseline (vector_clones.h): the square roots
// and divisions of d^-0.75 vectorise 16 wide where the CPU allows.
#define CONVNET_LRN_BLOCKS(T, SUFFIX)                                                           \
    CONVNET_VECTOR_CLONES void forward_block_##SUFFIX(const T* x, T* y, std::int64_t plane,     \
                                                      std::int64_t count, T* ring,              \
                                                      std::int64_t c, const LrnParams& p) {     \
        forward_block(x, y, plane, count, ring, c, p);                                          \
    }                                                                                           \
    CONVNET_VECTOR_CLONES void backward_block_##SUFFIX(                                         \
        const T* x, const T* y, const T* dy, T* dx, std::int64_t plane, std::int64_t count,     \
        T* denom, T* scratch, T* acc, std::int64_t c, const LrnParams& p, T beta_acc) {         \
        backward_block(x, y, dy, dx, plane, count, denom, scratch, acc, c, p, beta_acc);        \
    }                                                                                           \
    void forward_block_any(const T* x, T* y, std::int64_t plane, std::int64_t count, T* ring,   \
                           std::int64_t c, const LrnParams& p) {                                \
        forward_block_##SUFFIX(x, y, plane, count, ring, c, p);                                 \
    }                                                                                           \
    void backward_block_any(const T* x, const T* y, const T* dy, T* dx, std::int64_t plane,     \
                            std::int64_t count, T* denom, T* scratch, T* acc, std::int64_t c,   \
                            const LrnParams& p, T beta_acc) {                                   \
        backward_block_##SUFFIX(x, y, dy, dx, plane, count, denom, scratch, acc, c, p,          \
                                beta_acc);                                                      \
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
    const std::int64_t ring_rows = std::min<std::int64_t>(p.size, c);
    for_each_block<T>(n, hw, c, kForwardPixels, ring_rows * kRingStride,
                      [&](std::int64_t at, std::int64_t count, T* ring) {
                          forward_block_any(x + at, y + at, hw, count, ring, c, p);
                      });
}

template <typename T>
void lrn_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t c,
                      std::int64_t hw, const LrnParams& p, T beta_acc) {
    const std::int64_t row = c * kPixelBlock;
    for_each_block<T>(n, hw, c, kPixelBlock, 3 * row,
                      [&](std::int64_t at, std::int64_t count, T* rows) {
        backward_block_any(x + at, y + at, dy + at, dx + at, hw, count, rows, rows + row,
                           rows + 2 * row, c, p, beta_acc);
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
