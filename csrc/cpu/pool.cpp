// Pooling on the CPU, one (image, channel) plane per iteration of a threaded loop; the clipped
// window bounds of every output row and column are computed once per call.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/tensor.h"
#include "cpu/blas.h"
#include "ops/pool.h"

namespace convnet {

namespace {
// The in-image part [lo, hi) of every output's window along one axis, computed once per call.
struct Windows {
    Windows(std::int64_t outputs, int window, int stride, int start, std::int64_t size)
        : lo(outputs), hi(outputs) {
        for (std::int64_t o = 0; o < outputs; ++o) {
            const std::int64_t first = start + o * stride;
            lo[o] = std::max<std::int64_t>(first, 0);
            hi[o] = std::min<std::int64_t>(first + window, size);
        }
    }
    std::vector<std::int64_t> lo, hi;
};

template <typename T>
constexpr DType dtype_of() {
    return sizeof(T) == 4 ? DType::f32 : DType::f64;
}

int threads_for_planes(std::int64_t planes, std::int64_t outputs_per_plane) {
    return blas::threads_for(planes * outputs_per_plane / 4096 + 1);
}
}  // namespace

// Each output row is pooled in two passes that vectorise: down the window's rows over the whole
// input width (contiguous), then across each output's columns of that one row.
template <typename T>
void pool_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                      std::int64_t oh, std::int64_t ow, const PoolParams& p) {
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
    const bool is_max = p.mode == PoolMode::max;
    const int threads = threads_for_planes(planes, oh * ow);
    Tensor scratch = Tensor::empty({threads, w}, dtype_of<T>());
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        T* down = scratch.data<T>() + omp_get_thread_num() * w;
        const T* xp = x + plane * h * w;
        T* yp = y + plane * oh * ow;
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            const std::int64_t y0 = rows.lo[oy], y1 = rows.hi[oy];
            std::copy(xp + y0 * w, xp + (y0 + 1) * w, down);
            for (std::int64_t iy = y0 + 1; iy < y1; ++iy) {
                const T* row = xp + iy * w;
                if (is_max)
                    for (std::int64_t ix = 0; ix < w; ++ix) down[ix] = row[ix] > down[ix] ? row[ix] : down[ix];
                else
                    for (std::int64_t ix = 0; ix < w; ++ix) down[ix] += row[ix];
            }
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                const std::int64_t x0 = cols.lo[ox], x1 = cols.hi[ox];
                T out = down[x0];
                if (is_max) {
                    for (std::int64_t ix = x0 + 1; ix < x1; ++ix) out = down[ix] > out ? down[ix] : out;
                } else {
                    for (std::int64_t ix = x0 + 1; ix < x1; ++ix) out += down[ix];
                    out /= T((y1 - y0) * (x1 - x0));
                }
                yp[oy * ow + ox] = out;
            }
        }
    }
}

// Max pooling sends each output's gradient to every input of its window equal to the maximum
// (ties all receive it, as in cuda-convnet and our CUDA kernel). Per output row, the outputs'
// maxima and gradients are first spread over the input columns, one row per window offset k
// (an input column lies at offset k of at most one window); then each input row of the window
// takes, column by column, the gradient of every offset whose maximum it equals: a
// branch-free loop over contiguous memory, where a per-window loop would mispredict once per
// window and not vectorise. Contributions arrive in output order, as in a per-window loop.
template <typename T>
void pool_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                       std::int64_t h, std::int64_t w, std::int64_t oh, std::int64_t ow,
                       const PoolParams& p, T beta) {
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
    const bool is_max = p.mode == PoolMode::max;
    const int offsets = p.size_w;
    const int threads = threads_for_planes(planes, oh * ow);
    Tensor scratch = Tensor::empty({threads, 2 * offsets * w}, dtype_of<T>());
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        T* maxima = scratch.data<T>() + omp_get_thread_num() * 2 * offsets * w;  // [k][ix]
        T* grads = maxima + offsets * w;                                          // [k][ix]
        const T* xp = x + plane * h * w;
        const T* yp = y + plane * oh * ow;
        const T* dyp = dy + plane * oh * ow;
        T* dxp = dx + plane * h * w;
        if (beta == T(0))
            std::fill(dxp, dxp + h * w, T(0));
        else if (beta != T(1))
            for (std::int64_t i = 0; i < h * w; ++i) dxp[i] *= beta;
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            const std::int64_t y0 = rows.lo[oy], y1 = rows.hi[oy];
            std::fill(maxima, maxima + offsets * w, std::numeric_limits<T>::quiet_NaN());
            std::fill(grads, grads + offsets * w, T(0));
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                const std::int64_t first = std::int64_t(p.start_w) + ox * p.stride_w;
                const T g = is_max ? dyp[oy * ow + ox]
                                   : dyp[oy * ow + ox] / T((y1 - y0) * (cols.hi[ox] - cols.lo[ox]));
                for (std::int64_t ix = cols.lo[ox]; ix < cols.hi[ox]; ++ix) {
                    maxima[(ix - first) * w + ix] = yp[oy * ow + ox];
                    grads[(ix - first) * w + ix] = g;
                }
            }
            for (std::int64_t iy = y0; iy < y1; ++iy) {
                const T* row = xp + iy * w;
                T* drow = dxp + iy * w;
                // Higher offsets belong to earlier outputs: k descending adds in output order.
                for (int k = offsets - 1; k >= 0; --k) {
                    const T* m = maxima + k * w;
                    const T* g = grads + k * w;
                    if (is_max)
                        for (std::int64_t ix = 0; ix < w; ++ix) {
                            const T share = g[ix];  // loaded unconditionally: the select vectorises
                            drow[ix] += row[ix] == m[ix] ? share : T(0);
                        }
                    else
                        for (std::int64_t ix = 0; ix < w; ++ix) drow[ix] += g[ix];
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
