// Box sums over clipped square windows, shared by the within-map normalisations (rnorm.cpp,
// cnorm.cpp): separable, rows then columns.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "cpu/vector_clones.h"

namespace convnet {

// One window of `size` offsets starting `pre` before each pixel, on h x w planes: which pixels
// of a plane have their column at each offset inside the plane. Built once per call, so that each
// pass of box_sum runs over the whole plane as one contiguous loop: the small maps' rows (8 or 16
// wide) are otherwise mostly loop overhead.
struct BoxWindow {
    BoxWindow(std::int64_t h, std::int64_t w, int size, int pre)
        : h(h), w(w), size(size), pre(pre), column_inside(std::size_t(size * h * w)),
          pixels(std::size_t(h * w)) {
        for (int d = 0; d < size; ++d)
            for (std::int64_t k = 0; k < h * w; ++k) {
                const std::int64_t column = k % w + d - pre;
                column_inside[std::size_t(d * h * w + k)] = column >= 0 && column < w;
            }
        for (std::int64_t i = 0; i < h; ++i)
            for (std::int64_t j = 0; j < w; ++j) {
                const std::int64_t rows = std::min<std::int64_t>(i - pre + size, h) -
                                          std::max<std::int64_t>(i - pre, 0);
                const std::int64_t cols = std::min<std::int64_t>(j - pre + size, w) -
                                          std::max<std::int64_t>(j - pre, 0);
                pixels[std::size_t(i * w + j)] = std::int32_t(rows * cols);
            }
    }
    std::int64_t h, w;
    int size, pre;
    std::vector<std::uint8_t> column_inside;  // [d][pixel]
    std::vector<std::int32_t> pixels;         // [pixel]: how many of its window lie in the plane
};

// out[i][j] = sum of in over rows [i - pre, i - pre + size) x cols [j - pre, j - pre + size),
// clipped; tmp is scratch of h*w. Across, then down, each offset adding a whole shifted plane
// (the offsets whose column or row lies outside add nothing); terms are added in the same order,
// offset by offset, as a per-pixel loop would (adding a zero to a sum started at +0 changes no
// bit).
template <typename T>
CONVNET_ALWAYS_INLINE void box_sum(const T* __restrict in, T* __restrict out, T* __restrict tmp,
                                   const BoxWindow& b) {
    const std::int64_t n = b.h * b.w;
    for (std::int64_t k = 0; k < n; ++k) tmp[k] = T(0);
    for (int d = 0; d < b.size; ++d) {
        const std::int64_t shift = d - b.pre;
        const std::int64_t lo = std::max<std::int64_t>(0, -shift);
        const std::int64_t hi = std::min<std::int64_t>(n, n - shift);
        const std::uint8_t* inside = b.column_inside.data() + d * n;
        for (std::int64_t k = lo; k < hi; ++k) {
            const T v = in[k + shift];
            tmp[k] += inside[k] ? v : T(0);
        }
    }
    // Down: row i + shift exists exactly where pixel k + shift * w lies in the plane.
    for (std::int64_t k = 0; k < n; ++k) out[k] = T(0);
    for (int d = 0; d < b.size; ++d) {
        const std::int64_t shift = (d - b.pre) * b.w;
        const std::int64_t lo = std::max<std::int64_t>(0, -shift);
        const std::int64_t hi = std::min<std::int64_t>(n, n - shift);
        for (std::int64_t k = lo; k < hi; ++k) out[k] += tmp[k + shift];
    }
}

// The within-map normalisations' per-map functions, forward_plane and backward_plane (templates
// of the including file, with the same signatures in rnorm.cpp and cnorm.cpp), compiled for
// AVX-512 and the baseline (vector_clones.h) for one element type, and the _any overloads that
// call them. Expanded once per type in each file's anonymous namespace.
#define CONVNET_MAP_NORM_CLONES(T, SUFFIX)                                                         \
    CONVNET_VECTOR_CLONES void forward_plane_##SUFFIX(const T* x, T* y, T* scratch,             \
                                                      const BoxWindow& b,                       \
                                                      const RnormParams& p) {                   \
        forward_plane(x, y, scratch, b, p);                                                     \
    }                                                                                           \
    CONVNET_VECTOR_CLONES void backward_plane_##SUFFIX(                                         \
        const T* x, const T* y, const T* dy, T* dx, T* scratch, const BoxWindow& b,             \
        const BoxWindow& mirrored, const RnormParams& p, T beta_acc) {                          \
        backward_plane(x, y, dy, dx, scratch, b, mirrored, p, beta_acc);                        \
    }                                                                                           \
    void forward_plane_any(const T* x, T* y, T* scratch, const BoxWindow& b,                    \
                           const RnormParams& p) {                                              \
        forward_plane_##SUFFIX(x, y, scratch, b, p);                                            \
    }                                                                                           \
    void backward_plane_any(const T* x, const T* y, const T* dy, T* dx, T* scratch,             \
                            const BoxWindow& b, const BoxWindow& mirrored, const RnormParams& p, \
                            T beta_acc) {                                                       \
        backward_plane_##SUFFIX(x, y, dy, dx, scratch, b, mirrored, p, beta_acc);               \
    }

}  // namespace convnet
