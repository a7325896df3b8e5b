// im2col / col2im. For each (channel, ky, kx) row the range of output columns whose input pixel
// lies inside the image is computed once, so the inner loops carry no bounds checks.
#include "cpu/im2col.h"

#include <algorithm>
#include <cstring>

namespace convnet {

namespace {
// Output positions o in [lo, hi) read an in-image pixel o*stride - pad + k in [0, size).
struct ValidRange {
    std::int64_t lo, hi;
};

ValidRange valid_range(std::int64_t k, int stride, int pad, std::int64_t size, std::int64_t outs) {
    // o*stride >= pad - k  and  o*stride <= size - 1 + pad - k
    const std::int64_t first = pad - k;
    const std::int64_t last = size - 1 + pad - k;
    std::int64_t lo = first <= 0 ? 0 : (first + stride - 1) / stride;
    std::int64_t hi = last < 0 ? 0 : last / stride + 1;
    lo = std::min(lo, outs);
    hi = std::clamp(hi, lo, outs);
    return {lo, hi};
}
}  // namespace

template <typename T>
void im2col(const T* x, T* col, const ConvGeometry& g) {
    const std::int64_t cg = g.channels_per_group();
    const std::int64_t positions = g.oh * g.ow;
    for (std::int64_t c = 0; c < cg; ++c) {
        const T* xc = x + c * g.h * g.w;
        for (std::int64_t ky = 0; ky < g.kh; ++ky) {
            const ValidRange rows = valid_range(ky, g.stride_h, g.pad_h, g.h, g.oh);
            for (std::int64_t kx = 0; kx < g.kw; ++kx) {
                const ValidRange cols = valid_range(kx, g.stride_w, g.pad_w, g.w, g.ow);
                T* out = col + ((c * g.kh + ky) * g.kw + kx) * positions;
                std::fill(out, out + rows.lo * g.ow, T(0));
                for (std::int64_t oy = rows.lo; oy < rows.hi; ++oy) {
                    T* row = out + oy * g.ow;
                    const T* in = xc + (oy * g.stride_h - g.pad_h + ky) * g.w - g.pad_w + kx;
                    std::fill(row, row + cols.lo, T(0));
                    if (g.stride_w == 1) {
                        std::memcpy(row + cols.lo, in + cols.lo, (cols.hi - cols.lo) * sizeof(T));
                    } else {
                        for (std::int64_t ox = cols.lo; ox < cols.hi; ++ox)
                            row[ox] = in[ox * g.stride_w];
                    }
                    std::fill(row + cols.hi, row + g.ow, T(0));
                }
                std::fill(out + rows.hi * g.ow, out + positions, T(0));
            }
        }
    }
}

template <typename T>
void col2im_add(const T* col, T* dx, const ConvGeometry& g) {
    const std::int64_t cg = g.channels_per_group();
    const std::int64_t positions = g.oh * g.ow;
    for (std::int64_t c = 0; c < cg; ++c) {
        T* dxc = dx + c * g.h * g.w;
        for (std::int64_t ky = 0; ky < g.kh; ++ky) {
            const ValidRange rows = valid_range(ky, g.stride_h, g.pad_h, g.h, g.oh);
            for (std::int64_t kx = 0; kx < g.kw; ++kx) {
                const ValidRange cols = valid_range(kx, g.stride_w, g.pad_w, g.w, g.ow);
                const T* in = col + ((c * g.kh + ky) * g.kw + kx) * positions;
                for (std::int64_t oy = rows.lo; oy < rows.hi; ++oy) {
                    const T* row = in + oy * g.ow;
                    T* out = dxc + (oy * g.stride_h - g.pad_h + ky) * g.w - g.pad_w + kx;
                    for (std::int64_t ox = cols.lo; ox < cols.hi; ++ox)
                        out[ox * g.stride_w] += row[ox];
                }
            }
        }
    }
}

template void im2col<float>(const float*, float*, const ConvGeometry&);
template void im2col<double>(const double*, double*, const ConvGeometry&);
template void col2im_add<float>(const float*, float*, const ConvGeometry&);
template void col2im_add<double>(const double*, double*, const ConvGeometry&);

}  // namespace convnet
