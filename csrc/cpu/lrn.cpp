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
// An image is taken a block of this many pixels at a time, across all its channels, so that the
// scratch rows (channels x block) stay in cache; AlexNet's 96 x 55 x 55 would need 1.2 MB each.
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

// y = x * d^-beta, each map's window summed tile by tile straight into its output: forward writes
// no row of denominators to read back (AlexNet's lrn2 4.1 -> 2.8 ms). Backward, which needs the
// denominators twice, keeps them in a row: the same tiling made it slower there.
template <typename T>
CONVNET_ALWAYS_INLINE void forward_block(const T* x, T* y, std::int64_t plane, std::int64_t count,
                                         T* sq, std::int64_t c, const LrnParams& p) {
    for (std::int64_t f = 0; f < c; ++f)
        for (std::int64_t i = 0; i < count; ++i) sq[f * count + i] = x[f * plane + i] * x[f * plane + i];
    const T alpha = T(p.alpha), k = T(p.k), beta = T(p.beta);
    for (std::int64_t f = 0; f < c; ++f) {
        std::int64_t first, last;
        p.window(f, c, &first, &last);
        const T* xf = x + f * plane;
        T* yf = y + f * plane;
        for (std::int64_t i0 = 0; i0 < count; i0 += kSumTile) {
            const std::int64_t n = std::min(kSumTile, count - i0);
            T d[kSumTile] = {};
            for (std::int64_t j = first; j <= last; ++j) {
                const T* s = sq + j * count + i0;
                for (std::int64_t i = 0; i < n; ++i) d[i] += s[i];
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
                                                      std::int64_t count, T* sq, std::int64_t c,\
                                                      const LrnParams& p) {                     \
        forward_block(x, y, plane, count, sq, c, p);                                            \
    }                                                                                           \
    CONVNET_VECTOR_CLONES void backward_block_##SUFFIX(                                         \
        const T* x, const T* y, const T* dy, T* dx, std::int64_t plane, std::int64_t count,     \
        T* denom, T* scratch, T* acc, std::int64_t c, const LrnParams& p, T beta_acc) {         \
        backward_block(x, y, dy, dx, plane, count, denom, scratch, acc, c, p, beta_acc);        \
    }                                                                                           \
    void forward_block_any(const T* x, T* y, std::int64_t plane, std::int64_t count, T* sq,     \
                           std::int64_t c, const LrnParams& p) {                                \
        forward_block_##SUFFIX(x, y, plane, count, sq, c, p);                                   \
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

// Runs body(offset of the block's first pixel, pixels, rows) for every (image, pixel block) on
// the threads, rows being `row_count` scratch rows of c * kPixelBlock T of the thread's own.
template <typename T, typename Body>
void for_each_block(std::int64_t n, std::int64_t c, std::int64_t hw, int row_count, Body&& body) {
    const std::int64_t blocks = (hw + kPixelBlock - 1) / kPixelBlock;
    const int threads = blas::threads_for(n * blocks);
    Tensor scratch = blas::thread_rows(threads, row_count * c * kPixelBlock, dtype_of<T>());
    blas::for_each_item(n * blocks, threads, [&](std::int64_t item, int t) {
        const std::int64_t img = item / blocks, i0 = (item % blocks) * kPixelBlock;
        body(img * c * hw + i0, std::min(kPixelBlock, hw - i0),
             scratch.data<T>() + t * scratch.dim(1));
    });
}
}  // namespace

template <typename T>
void lrn_forward_cpu(const T* x, T* y, std::int64_t n, std::int64_t c, std::int64_t hw,
                     const LrnParams& p) {
    for_each_block<T>(n, c, hw, 1, [&](std::int64_t at, std::int64_t count, T* rows) {
        forward_block_any(x + at, y + at, hw, count, rows, c, p);
    });
}

template <typename T>
void lrn_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t c,
                      std::int64_t hw, const LrnParams& p, T beta_acc) {
    const std::int64_t row = c * kPixelBlock;
    for_each_block<T>(n, c, hw, 3, [&](std::int64_t at, std::int64_t count, T* rows) {
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
