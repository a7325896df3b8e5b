// Box sums over clipped square windows, shared by the within-map normalisations (rnorm.cpp,
// cnorm.cpp): separable, rows then columns.
#pragma once

#include <algorithm>
#include <cstdint>

namespace convnet {

// out[i][j] = sum of in over rows [i - pre, i - pre + size) x cols [j - pre, j - pre + size),
// clipped; tmp is scratch of h*w.
template <typename T>
inline void box_sum(const T* in, T* out, T* tmp, std::int64_t h, std::int64_t w, int size,
                    int pre) {
    for (std::int64_t i = 0; i < h; ++i)
        for (std::int64_t j = 0; j < w; ++j) {
            const std::int64_t lo = std::max<std::int64_t>(j - pre, 0);
            const std::int64_t hi = std::min<std::int64_t>(j - pre + size, w);
            T s = 0;
            for (std::int64_t v = lo; v < hi; ++v) s += in[i * w + v];
            tmp[i * w + j] = s;
        }
    for (std::int64_t i = 0; i < h; ++i) {
        const std::int64_t lo = std::max<std::int64_t>(i - pre, 0);
        const std::int64_t hi = std::min<std::int64_t>(i - pre + size, h);
        for (std::int64_t j = 0; j < w; ++j) {
            T s = 0;
            for (std::int64_t u = lo; u < hi; ++u) s += tmp[u * w + j];
            out[i * w + j] = s;
        }
    }
}

}  // namespace convnet
