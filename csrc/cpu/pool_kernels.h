// The interface between pooling's driver (pool.cpp) and its AVX-512 plane loops
// (pool_avx512.cpp). Plain data and pointers only: the kernel file is compiled for AVX-512 and
// must not share inline functions with the rest of the library.
#pragma once

#include <cstdint>

namespace convnet::pool_avx512 {

// One plane's geometry: h x w pooled to oh x ow; output row oy reads input rows
// [row_lo[oy], row_hi[oy]) (clipped to the image); output column ox reads columns
// start_w + ox*stride_w + kx for kx < size_w, those outside [0, w) skipped.
struct Plane {
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
void max_plane(const float* x, float* y, std::int32_t* winners, const Plane& g);

// Planes at most 16 wide, pooled to at most 16 columns: one vector per row. NarrowColumns, set
// once per call by narrow_columns, says which input column each output lane reads at window
// offset kx (index) and whether it lies in the image (inside), and how many do (cols_in).
constexpr std::int64_t kNarrowWidth = 16;
inline bool takes_narrow(std::int64_t w, std::int64_t ow, int size_w) {
    return w <= kNarrowWidth && ow <= kNarrowWidth && size_w <= kMaxWindowColumns;
}
struct NarrowColumns {
    std::int32_t index[kMaxWindowColumns][16];
    std::uint16_t inside[kMaxWindowColumns];
    float cols_in[16];
};
void narrow_columns(const Plane& g, NarrowColumns* columns);
// max_plane's results for a narrow plane (any horizontal stride).
void narrow_max_plane(const float* x, float* y, std::int32_t* winners, const Plane& g,
                      const NarrowColumns& columns);
// y = the mean of each window's in-image inputs, summed as pool.cpp's loop sums them (down the
// window's rows, then across its columns, in order), so the results are the same bits.
void narrow_avg_plane(const float* x, float* y, const Plane& g, const NarrowColumns& columns);

// Average pooling's gradient for planes at most 16 wide whose rows have fewer than 16 outputs:
// one vector per row. share = dy / (rows_in[oy] * cols_in[ox]); input column ix of output row oy
// receives sum over k < col_depth of share[col_cover[k * w + ix]] (index ow: nothing, a zero);
// input row iy is beta * dx + the rows of the output rows row_cover[k * h + iy] (oh: no more).
// The same sums in the same order as pool.cpp's loop.
struct AvgBackwardPlane {
    std::int64_t h, w, oh, ow;
    const float* rows_in;  // oh: the in-image rows of each output row's window
    const float* cols_in;  // ow: the in-image columns of each output column's window
    const std::int32_t* col_cover;
    std::int64_t col_depth;
    const std::int32_t* row_cover;
    std::int64_t row_depth;
};
inline bool takes_avg_backward(std::int64_t w, std::int64_t ow, std::int64_t col_depth) {
    return w <= kNarrowWidth && ow < 16 && col_depth <= kNarrowWidth;
}
// across: scratch of oh * 16 floats.
void avg_plane_backward(const float* dy, float* dx, float beta, const AvgBackwardPlane& g,
                        float* across);

}  // namespace convnet::pool_avx512
