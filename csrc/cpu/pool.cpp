// Pooling on the CPU, one (image, channel) plane per iteration of a threaded loop.
#include <algorithm>
#include <limits>

#include "cpu/blas.h"
#include "ops/pool.h"

namespace convnet {

namespace {
// The in-image part [lo, hi) of the window of output o along one axis.
inline void clip(std::int64_t o, int window, int stride, int start, std::int64_t size,
                 std::int64_t* lo, std::int64_t* hi) {
    const std::int64_t first = start + o * stride;
    *lo = std::max<std::int64_t>(first, 0);
    *hi = std::min<std::int64_t>(first + window, size);
}
}  // namespace

template <typename T>
void pool_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                      std::int64_t oh, std::int64_t ow, const PoolParams& p) {
    const int threads = blas::threads_for(planes * oh * ow / 4096 + 1);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        const T* xp = x + plane * h * w;
        T* yp = y + plane * oh * ow;
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            std::int64_t y0, y1;
            clip(oy, p.size_h, p.stride_h, p.start_h, h, &y0, &y1);
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                std::int64_t x0, x1;
                clip(ox, p.size_w, p.stride_w, p.start_w, w, &x0, &x1);
                T out;
                if (p.mode == PoolMode::max) {
                    out = -std::numeric_limits<T>::infinity();
                    for (std::int64_t iy = y0; iy < y1; ++iy)
                        for (std::int64_t ix = x0; ix < x1; ++ix) out = std::max(out, xp[iy * w + ix]);
                } else {
                    T sum = 0;
                    for (std::int64_t iy = y0; iy < y1; ++iy)
                        for (std::int64_t ix = x0; ix < x1; ++ix) sum += xp[iy * w + ix];
                    out = sum / T((y1 - y0) * (x1 - x0));
                }
                yp[oy * ow + ox] = out;
            }
        }
    }
}

template <typename T>
void pool_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                       std::int64_t h, std::int64_t w, std::int64_t oh, std::int64_t ow,
                       const PoolParams& p, T beta) {
    const int threads = blas::threads_for(planes * oh * ow / 4096 + 1);
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        const T* xp = x + plane * h * w;
        const T* yp = y + plane * oh * ow;
        const T* dyp = dy + plane * oh * ow;
        T* dxp = dx + plane * h * w;
        if (beta == T(0))
            std::fill(dxp, dxp + h * w, T(0));
        else if (beta != T(1))
            for (std::int64_t i = 0; i < h * w; ++i) dxp[i] *= beta;
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            std::int64_t y0, y1;
            clip(oy, p.size_h, p.stride_h, p.start_h, h, &y0, &y1);
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                std::int64_t x0, x1;
                clip(ox, p.size_w, p.stride_w, p.start_w, w, &x0, &x1);
                const T g = dyp[oy * ow + ox];
                if (p.mode == PoolMode::max) {
                    const T m = yp[oy * ow + ox];
                    for (std::int64_t iy = y0; iy < y1; ++iy)
                        for (std::int64_t ix = x0; ix < x1; ++ix)
                            if (xp[iy * w + ix] == m) dxp[iy * w + ix] += g;
                } else {
                    const T share = g / T((y1 - y0) * (x1 - x0));
                    for (std::int64_t iy = y0; iy < y1; ++iy)
                        for (std::int64_t ix = x0; ix < x1; ++ix) dxp[iy * w + ix] += share;
                }
            }
        }
    }
}

template void pool_forward_cpu<float>(const float*, float*, std::int64_t, std::int64_t,
                                      std::int64_t, std::int64_t, std::int64_t,
                                      const PoolParams&);
template void pool_forward_cpu<double>(const double*, double*, std::int64_t, std::int64_t,
                                       std::int64_t, std::int64_t, std::int64_t,
                                       const PoolParams&);
template void pool_backward_cpu<float>(const float*, const float*, const float*, float*,
                                       std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, const PoolParams&, float);
template void pool_backward_cpu<double>(const double*, const double*, const double*, double*,
                                        std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                        std::int64_t, const PoolParams&, double);

}  // namespace convnet
