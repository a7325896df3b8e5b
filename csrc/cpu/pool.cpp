// Pooling on the CPU, one (image, channel) plane per iteration of a threaded loop; the clipped
// window bounds of every output row and column are computed once per call.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/tensor.h"
#include "cpu/blas.h"
#include "cpu/vector_clones.h"
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

// Max pooling, recording each window's winner where asked (pool.h), in two passes that vectorise.
// Down: per input column, the largest value of the window's rows, where it is, and whether
// another row equalled it. Across: the window's columns merged the same way, for all outputs of
// the row at once: the column at offset kx of output ox is (ox*stride + start + kx), so with the
// columns dealt into `stride` phases (phase k holds columns k, k + stride, ...) and padded with
// -inf, offset kx of every output is one contiguous run of a phase. Merging a padding -inf changes
// nothing: a window whose maximum is -inf is a tie either way. Selects are written as masks, not
// branches: which input wins is data and would be mispredicted, and GCC vectorises the integer
// selects only in this form. NaN never wins (it compares false), as in a plain max loop.
struct MaxPoolRows {
    MaxPoolRows(std::int64_t h, std::int64_t w, std::int64_t oh, std::int64_t ow,
                const PoolParams& p)
        : rows(oh, p.size_h, p.stride_h, p.start_h, h), w(w), oh(oh), ow(ow), stride(p.stride_w),
          size(p.size_w), left(std::max<std::int64_t>(0, -p.start_w)),
          padded(left + w + std::max<std::int64_t>(0, p.start_w + (ow - 1) * stride + size - w)),
          phase_len((padded + stride - 1) / stride), first(p.start_w + left),
          lanes(w + stride * phase_len + ow) {}
    Windows rows;
    std::int64_t w, oh, ow, stride, size;
    std::int64_t left, padded, phase_len;
    std::int64_t first;  // padded column of output 0's first input
    // Scratch per plane, `lanes` values (T) and 2 * `lanes` int32 marks: the down pass (w),
    // the phases (stride * phase_len) and the outputs of a row (ow).
    std::int64_t lanes;
};

template <typename T>
CONVNET_ALWAYS_INLINE void max_pool_plane(const T* xp, T* yp, std::int32_t* wp,
                                          const MaxPoolRows& g, T* down, std::int32_t* down_at) {
    constexpr T lowest = -std::numeric_limits<T>::infinity();
    const std::int64_t w = g.w, ow = g.ow, s = g.stride, phase_len = g.phase_len;
    T* phase = down + w;
    T* best = phase + s * phase_len;
    std::int32_t* phase_at = down_at + w;
    std::int32_t* at = phase_at + s * phase_len;
    std::int32_t* down_tie = down_at + g.lanes;
    std::int32_t* phase_tie = down_tie + w;
    std::int32_t* tie = phase_tie + s * phase_len;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        for (std::int64_t ix = 0; ix < w; ++ix) {
            down[ix] = lowest;
            down_at[ix] = -1;
            down_tie[ix] = 0;
        }
        for (std::int64_t iy = g.rows.lo[oy]; iy < g.rows.hi[oy]; ++iy) {
            const T* row = xp + iy * w;
            const std::int32_t base = std::int32_t(iy * w);
            for (std::int64_t ix = 0; ix < w; ++ix) {
                const T v = row[ix], b = down[ix];
                const std::int32_t gt = -std::int32_t(v > b), eq = std::int32_t(v == b);
                down_tie[ix] = (down_tie[ix] | eq) & ~gt;
                down_at[ix] = (down_at[ix] & ~gt) | ((base + std::int32_t(ix)) & gt);
                down[ix] = v > b ? v : b;
            }
        }
        for (std::int64_t k = 0, i = 0; k < s; ++k)
            for (std::int64_t ix = k - g.left; ix < phase_len * s + k - g.left; ix += s, ++i) {
                const bool inside = ix >= 0 && ix < w;
                phase[i] = inside ? down[ix] : lowest;
                phase_at[i] = inside ? down_at[ix] : -1;
                phase_tie[i] = inside ? down_tie[ix] : 0;
            }
        for (std::int64_t ox = 0; ox < ow; ++ox) {
            best[ox] = lowest;
            at[ox] = -1;
            tie[ox] = 0;
        }
        for (std::int64_t kx = 0; kx < g.size; ++kx) {
            const std::int64_t run = ((g.first + kx) % s) * phase_len + (g.first + kx) / s;
            const T* pv = phase + run;
            const std::int32_t* pa = phase_at + run;
            const std::int32_t* pt = phase_tie + run;
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                const T v = pv[ox], b = best[ox];
                const std::int32_t gt = -std::int32_t(v > b), eq = std::int32_t(v == b);
                tie[ox] = (pt[ox] & gt) | ((tie[ox] | eq) & ~gt);
                at[ox] = (pa[ox] & gt) | (at[ox] & ~gt);
                best[ox] = v > b ? v : b;
            }
        }
        for (std::int64_t ox = 0; ox < ow; ++ox) yp[oy * ow + ox] = best[ox];
        if (wp)
            for (std::int64_t ox = 0; ox < ow; ++ox) wp[oy * ow + ox] = tie[ox] ? -1 : at[ox];
    }
}

CONVNET_VECTOR_CLONES void max_pool_plane_f32(const float* xp, float* yp, std::int32_t* wp,
                                              const MaxPoolRows& g, float* values,
                                              std::int32_t* marks) {
    max_pool_plane(xp, yp, wp, g, values, marks);
}
CONVNET_VECTOR_CLONES void max_pool_plane_f64(const double* xp, double* yp, std::int32_t* wp,
                                              const MaxPoolRows& g, double* values,
                                              std::int32_t* marks) {
    max_pool_plane(xp, yp, wp, g, values, marks);
}
void max_pool_plane_any(const float* xp, float* yp, std::int32_t* wp, const MaxPoolRows& g,
                        float* values, std::int32_t* marks) {
    max_pool_plane_f32(xp, yp, wp, g, values, marks);
}
void max_pool_plane_any(const double* xp, double* yp, std::int32_t* wp, const MaxPoolRows& g,
                        double* values, std::int32_t* marks) {
    max_pool_plane_f64(xp, yp, wp, g, values, marks);
}

template <typename T>
void max_pool_forward_with_winners(const T* x, T* y, std::int64_t planes, std::int64_t h,
                                   std::int64_t w, std::int64_t oh, std::int64_t ow,
                                   const PoolParams& p, std::int32_t* winners) {
    const MaxPoolRows g(h, w, oh, ow, p);
    const int threads = threads_for_planes(planes, oh * ow);
    Tensor values = blas::thread_rows(threads, g.lanes, dtype_of<T>());
    Tensor marks = blas::thread_rows(threads, 2 * g.lanes);  // int32 positions and ties
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        const int t = omp_get_thread_num();
        max_pool_plane_any(x + plane * h * w, y + plane * oh * ow,
                           winners ? winners + plane * oh * ow : nullptr, g,
                           values.data<T>() + t * values.dim(1),
                           static_cast<std::int32_t*>(marks.raw()) + t * marks.dim(1));
    }
}

}  // namespace

// Each output's gradient goes to its window's winner; a window without one (a tie) searches for
// every input equal to its maximum, as the plain backward does. Outputs are taken in order, so
// each input sums its contributions in the same order as there.
template <typename T>
void max_pool_backward_from_winners(const T* x, const T* y, const T* dy, T* dx,
                                    std::int64_t planes, std::int64_t h, std::int64_t w,
                                    std::int64_t oh, std::int64_t ow, const PoolParams& p, T beta,
                                    const std::int32_t* winners) {
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
#pragma omp parallel for num_threads(threads_for_planes(planes, oh * ow)) schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        const T* xp = x + plane * h * w;
        const T* yp = y + plane * oh * ow;
        const T* dyp = dy + plane * oh * ow;
        const std::int32_t* wp = winners + plane * oh * ow;
        T* dxp = dx + plane * h * w;
        if (beta == T(0))
            std::fill(dxp, dxp + h * w, T(0));
        else if (beta != T(1))
            for (std::int64_t i = 0; i < h * w; ++i) dxp[i] *= beta;
        for (std::int64_t o = 0; o < oh * ow; ++o) {
            const T g = dyp[o];
            if (wp[o] >= 0) {
                dxp[wp[o]] += g;
                continue;
            }
            const T m = yp[o];
            const std::int64_t oy = o / ow, ox = o % ow;
            for (std::int64_t iy = rows.lo[oy]; iy < rows.hi[oy]; ++iy)
                for (std::int64_t ix = cols.lo[ox]; ix < cols.hi[ox]; ++ix)
                    dxp[iy * w + ix] += xp[iy * w + ix] == m ? g : T(0);
        }
    }
}

// Average pooling, each output row in two passes that vectorise: down the window's rows over the
// whole input width (contiguous), then across each output's columns of that one row.
template <typename T>
void pool_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                      std::int64_t oh, std::int64_t ow, const PoolParams& p,
                      std::int32_t* winners) {
    if (p.mode == PoolMode::max)
        return max_pool_forward_with_winners(x, y, planes, h, w, oh, ow, p, winners);
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
    const int threads = threads_for_planes(planes, oh * ow);
    Tensor scratch = blas::thread_rows(threads, w, dtype_of<T>());
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        T* down = scratch.data<T>() + omp_get_thread_num() * scratch.dim(1);
        const T* xp = x + plane * h * w;
        T* yp = y + plane * oh * ow;
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            const std::int64_t y0 = rows.lo[oy], y1 = rows.hi[oy];
            std::copy(xp + y0 * w, xp + (y0 + 1) * w, down);
            for (std::int64_t iy = y0 + 1; iy < y1; ++iy) {
                const T* row = xp + iy * w;
                for (std::int64_t ix = 0; ix < w; ++ix) down[ix] += row[ix];
            }
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                const std::int64_t x0 = cols.lo[ox], x1 = cols.hi[ox];
                T out = down[x0];
                for (std::int64_t ix = x0 + 1; ix < x1; ++ix) out += down[ix];
                out /= T((y1 - y0) * (x1 - x0));
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
                       const PoolParams& p, T beta, const std::int32_t* winners) {
    if (winners && p.mode == PoolMode::max)
        return max_pool_backward_from_winners(x, y, dy, dx, planes, h, w, oh, ow, p, beta, winners);
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
    const bool is_max = p.mode == PoolMode::max;
    const int offsets = p.size_w;
    const int threads = threads_for_planes(planes, oh * ow);
    Tensor scratch = blas::thread_rows(threads, 2 * offsets * w, dtype_of<T>());
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t plane = 0; plane < planes; ++plane) {
        T* maxima = scratch.data<T>() + omp_get_thread_num() * scratch.dim(1);  // [k][ix]
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
                                      const PoolParams&, std::int32_t*);
template void pool_forward_cpu<double>(const double*, double*, std::int64_t, std::int64_t,
                                       std::int64_t, std::int64_t, std::int64_t,
                                       const PoolParams&, std::int32_t*);
template void pool_backward_cpu<float>(const float*, const float*, const float*, float*,
                                       std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, const PoolParams&, float, const std::int32_t*);
template void pool_backward_cpu<double>(const double*, const double*, const double*, double*,
                                        std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                        std::int64_t, const PoolParams&, double,
                                        const std::int32_t*);

}  // namespace convnet
