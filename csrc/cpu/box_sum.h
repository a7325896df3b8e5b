// Box sums over clipped square windows, shared by the within-map normalisations (rnorm.cpp,
// cnorm.cpp): separable, rows then columns.
#pragma once

#include <algorithm>
#include <cstdint>

namespace convnet {

// out[i][j] = sum of in over rows [i - pre, i - pre + size) x cols [j - pre, j - pre + size),
// clipped; tmp is scratch of h*w. Each pass adds whole shifted rows (the in-image span of each
// offset), so the loops run over contiguous memory and vectorise; terms are added in the same
// order, offset by offset, as a per-pixel loop would.
template <typename T>
inline void box_sum(const T* in, T* out, T* tmp, std::int64_t h, std::int64_t w, int size,
                    int pre) {
    // Across: tmp[i][j] = sum over d of in[i][j + d - pre] where that column exists.
    std::fill(tmp, tmp + h * w, T(0));
    for (int d = 0; d < size; ++d) {
        const std::int64_t shift = d - pre;
        const std::int64_t lo = std::max<std::int64_t>(0, -shift);
        const std::int64_t hi = std::min<std::int64_t>(w, w - shift);
        for (std::int64_t i = 0; i < h; ++i) {
            const T* src = in + i * w + shift;
            T* dst = tmp + i * w;
            for (std::int64_t j = lo; j < hi; ++j) dst[j] += src[j];
        }
    }
    // Down: out[i] = sum over d of tmp[i + d - pre] where that row exists.
    std::fill(out, out + h * w, T(0));
    for (int d = 0; d < size; ++d) {
        const std::int64_t shift = d - pre;
        const std::int64_t lo = std::max<std::int64_t>(0, -shift);
        const std::int64_t hi = std::min<std::int64_t>(h, h - shift);
        for (std::int64_t i = lo; i < hi; ++i) {
            const T* src = tmp + (i + shift) * w;
            T* dst = out + i * w;
            for (std::int64_t j = 0; j < w; ++j) dst[j] += src[j];
        }
    }
}

}  // namespace convnet
