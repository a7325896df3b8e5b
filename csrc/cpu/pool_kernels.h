// The interface between max pooling's driver (pool.cpp) and its AVX-512 plane loop
// (pool_avx512.cpp). Plain data and pointers only: the kernel file is compiled for AVX-512 and
// must not share inline functions with the rest of the library.
#pragma once

#include <cstdint>

namespace convnet::pool_avx512 {

// One plane's geometry: h x w pooled to oh x ow; output row oy reads input rows
// [row_lo[oy], row_hi[oy]) (clipped to the image); output column ox reads columns
// start_w + ox*stride_w + kx for kx < size_w, those outside [0, w) skipped.
struct MaxPlane {
    std::int64_t h, w, oh, ow;
    int stride_w, size_w, start_w;
    const std::int64_t* row_lo;
    const std::int64_t* row_hi;
};

// Whether max_plane takes this horizontal window: stride 1 or 2 (columns are loaded as contiguous
// runs, or as the even lanes of two), and at most kMaxWindowColumns columns.
constexpr int kMaxWindowColumns = 16;
inline bool takes(int stride_w, int size_w) {
    return (stride_w == 1 || stride_w == 2) && size_w <= kMaxWindowColumns;
}

// y (oh x ow) = the maximum of each window of x (h x w); winners (may be null) = the in-plane
// index of the window's only maximum, -1 where several inputs equal it (ops/pool.h). Sixteen
// outputs of a row at a time, every window input one vector compare: NaN never wins.
void max_plane(const float* x, float* y, std::int32_t* winners, const MaxPlane& g);

}  // namespace convnet::pool_avx512
