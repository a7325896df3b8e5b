// im2col / col2im. For each (channel, ky, kx) row the range of output columns whose input pixel
// lies inside the image is computed once, so the inner loops carry no bounds checks.
#include "cpu/im2col.h"

#include "cpu/vector_clones.h"

#include <algorithm>
#include <cstring>
#include <vector>

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

namespace {
// col2im for a horizontal stride of 1: each (channel, ky, kx) row adds contiguously into dx.
template <typename T>
void col2im_unit_stride(const T* col, T* dx, const ConvGeometry& g) {
    const std::int64_t positions = g.oh * g.ow;
    for (std::int64_t c = 0; c < g.channels_per_group(); ++c) {
        T* dxc = dx + c * g.h * g.w;
        for (std::int64_t ky = 0; ky < g.kh; ++ky) {
            const ValidRange rows = valid_range(ky, g.stride_h, g.pad_h, g.h, g.oh);
            for (std::int64_t kx = 0; kx < g.kw; ++kx) {
                const ValidRange cols = valid_range(kx, 1, g.pad_w, g.w, g.ow);
                const T* in = col + ((c * g.kh + ky) * g.kw + kx) * positions;
                for (std::int64_t oy = rows.lo; oy < rows.hi; ++oy) {
                    const T* row = in + oy * g.ow;
                    T* out = dxc + (oy * g.stride_h - g.pad_h + ky) * g.w - g.pad_w + kx;
                    for (std::int64_t ox = cols.lo; ox < cols.hi; ++ox) out[ox] += row[ox];
                }
            }
        }
    }
}

// col2im for a horizontal stride s > 1, one dx row at a time. Pixel x = q*s + r - pad_w of a dx
// row receives tap kx = r + j*s at output column ox = q - j, so the taps of one phase r add into
// a per-phase row acc_r[q] with contiguous, vectorisable loads; the phases are then interleaved
// into dx once per row. (Scattering each tap straight into dx is a strided scalar add per tap.)
template <typename T>
CONVNET_ALWAYS_INLINE void col2im_strided(const T* col, T* dx, const ConvGeometry& g) {
    const std::int64_t s = g.stride_w, positions = g.oh * g.ow;
    const std::int64_t slots = std::max(g.ow + (g.kw - 1) / s, (g.w - 1 + g.pad_w) / s + 1);
    std::vector<T> acc(static_cast<std::size_t>(s * slots));
    for (std::int64_t c = 0; c < g.channels_per_group(); ++c) {
        for (std::int64_t y = 0; y < g.h; ++y) {
            std::fill(acc.begin(), acc.end(), T(0));
            bool touched = false;
            // Taps ky with (y + pad_h - ky) a multiple of the stride, at output row oy.
            const std::int64_t last_ky = std::min(g.kh - 1, y + g.pad_h);
            for (std::int64_t ky = (y + g.pad_h) % g.stride_h; ky <= last_ky; ky += g.stride_h) {
                const std::int64_t oy = (y + g.pad_h - ky) / g.stride_h;
                if (oy >= g.oh) continue;
                touched = true;
                for (std::int64_t kx = 0; kx < g.kw; ++kx) {
                    const T* row = col + ((c * g.kh + ky) * g.kw + kx) * positions + oy * g.ow;
                    T* phase = acc.data() + (kx % s) * slots + kx / s;
                    for (std::int64_t ox = 0; ox < g.ow; ++ox) phase[ox] += row[ox];
                }
            }
            if (!touched) continue;
            T* out = dx + (c * g.h + y) * g.w;
            for (std::int64_t r = 0; r < s; ++r) {
                const T* phase = acc.data() + r * slots;
                // x = q*s + r - pad_w inside [0, w)
                const std::int64_t q_lo = std::max<std::int64_t>(0, (g.pad_w - r + s - 1) / s);
                const std::int64_t q_hi = std::min(slots, (g.w - 1 + g.pad_w - r) / s + 1);
                for (std::int64_t q = q_lo; q < q_hi; ++q) out[q * s + r - g.pad_w] += phase[q];
            }
        }
    }
}
CONVNET_VECTOR_CLONES void col2im_strided_f32(const float* col, float* dx,
                                              const ConvGeometry& g) {
    col2im_strided(col, dx, g);
}
CONVNET_VECTOR_CLONES void col2im_strided_f64(const double* col, double* dx,
                                              const ConvGeometry& g) {
    col2im_strided(col, dx, g);
}
void col2im_strided_any(const float* col, float* dx, const ConvGeometry& g) {
    col2im_strided_f32(col, dx, g);
}
void col2im_strided_any(const double* col, double* dx, const ConvGeometry& g) {
    col2im_strided_f64(col, dx, g);
}
}  // namespace

template <typename T>
void col2im_add(const T* col, T* dx, const ConvGeometry& g) {
    if (g.stride_w == 1)
        col2im_unit_stride(col, dx, g);
    else
        col2im_strided_any(col, dx, g);
}

template void im2col<float>(const float*, float*, const ConvGeometry&);
template void im2col<double>(const double*, double*, const ConvGeometry&);
template void col2im_add<float>(const float*, float*, const ConvGeometry&);
template void col2im_add<double>(const double*, double*, const ConvGeometry&);

}  // namespace convnet
