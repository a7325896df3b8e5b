// Pooling on the CPU, one (image, channel) plane per iteration of a threaded loop; the clipped
// window bounds of every output row and column are computed once per call.
#include <omp.h>

#include <algorithm>
#include <limits>
#include <type_traits>
#include <vector>

#include "core/tensor.h"
#include "cpu/blas.h"
#include "cpu/pool_kernels.h"
#include "cpu/vector_clones.h"
#include "ops/neuron.h"
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

int threads_for_planes(std::int64_t planes, std::int64_t outputs_per_plane) {
    return blas::threads_for(planes * outputs_per_plane / 4096 + 1);
}

// Runs body(plane, scratch) for every (image, channel) plane on the threads, each thread with a
// scratch row of `scratch_len` T of its own.
template <typename T, typename Body>
void for_each_plane(std::int64_t planes, std::int64_t outputs_per_plane,
                    std::int64_t scratch_len, Body&& body) {
    const int threads = threads_for_planes(planes, outputs_per_plane);
    Tensor scratch = blas::thread_rows(threads, scratch_len, dtype_of<T>());
    blas::for_each_item(planes, threads, [&](std::int64_t plane, int t) {
        body(plane, scratch.data<T>() + t * scratch.dim(1));
    });
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
// Every loop runs over whole blocks of kBlock lanes (the scratch rows are padded to them, and
// the down pass reads up to kBlock - 1 values past a row, into the next row; the plane's last
// row is first copied to a padded row so that nothing past the tensor is read): the rows of
// small images (28, 14, 7 wide) are otherwise mostly scalar remainder loops.
constexpr std::int64_t kBlock = 16;

std::int64_t round_up(std::int64_t n, std::int64_t m) { return (n + m - 1) / m * m; }

struct MaxPoolRows {
    MaxPoolRows(std::int64_t h, std::int64_t w, std::int64_t oh, std::int64_t ow,
                const PoolParams& p)
        : rows(oh, p.size_h, p.stride_h, p.start_h, h), h(h), w(w), oh(oh), ow(ow),
          stride(p.stride_w), size(p.size_w), left(std::max<std::int64_t>(0, -p.start_w)),
          w_pad(round_up(w, kBlock)), ow_pad(round_up(ow, kBlock)) {
        const std::int64_t padded =
            left + w + std::max<std::int64_t>(0, p.start_w + (ow - 1) * stride + size - w);
        phase_len = (padded + stride - 1) / stride;
        phase_row = phase_len + ow_pad;
        down_len = std::max(phase_len * stride, left + w_pad);
        first = p.start_w + left;
        lanes = down_len + stride * phase_row + ow_pad + w_pad;
    }
    Windows rows;
    std::int64_t h, w, oh, ow, stride, size, left, w_pad, ow_pad;
    std::int64_t phase_len;  // columns per phase, padding included
    std::int64_t phase_row;  // a phase's scratch row: phase_len, then -inf for the last runs
    std::int64_t down_len;   // the down pass's row: `left` padding, the columns, padding
    std::int64_t first;      // padded column of output 0's first input
    // Scratch per thread: `lanes` values (T) and 2 * `lanes` int32 marks, laid out as the down
    // pass's row, the phases, the outputs of a row, and (values only) a copy of a last row.
    std::int64_t lanes;
};

template <typename T>
CONVNET_ALWAYS_INLINE void fill_marks(T* v, std::int32_t* at, std::int32_t* tie, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) {
        v[i] = -std::numeric_limits<T>::infinity();
        at[i] = -1;
        tie[i] = 0;
    }
}

// Sets up a thread's scratch for MaxPoolRows g: the paddings that no pass writes.
template <typename T>
void max_pool_scratch(const MaxPoolRows& g, T* values, std::int32_t* marks) {
    fill_marks(values, marks, marks + g.lanes, g.lanes);
}

template <typename T>
CONVNET_ALWAYS_INLINE void max_pool_plane(const T* xp, T* yp, std::int32_t* wp,
                                          const MaxPoolRows& g, bool last_plane, T* values,
                                          std::int32_t* marks) {
    constexpr T lowest = -std::numeric_limits<T>::infinity();
    const std::int64_t w = g.w, s = g.stride, phase_row = g.phase_row;
    T* down = values + g.left;  // column ix of the down pass at down[ix]
    T* phase = values + g.down_len;
    T* best = phase + s * phase_row;
    T* last_row = best + g.ow_pad;
    std::int32_t* down_at = marks + g.left;
    std::int32_t* phase_at = marks + g.down_len;
    std::int32_t* at = phase_at + s * phase_row;
    std::int32_t* down_tie = down_at + g.lanes;
    std::int32_t* phase_tie = phase_at + g.lanes;
    std::int32_t* tie = at + g.lanes;
    for (std::int64_t oy = 0; oy < g.oh; ++oy) {
        fill_marks(down, down_at, down_tie, g.w_pad);
        for (std::int64_t iy = g.rows.lo[oy]; iy < g.rows.hi[oy]; ++iy) {
            const T* row = xp + iy * w;
            if (last_plane && iy == g.h - 1 && g.w_pad > w) {
                for (std::int64_t ix = 0; ix < g.w_pad; ++ix) last_row[ix] = ix < w ? row[ix] : lowest;
                row = last_row;
            }
            const std::int32_t base = std::int32_t(iy * w);
            for (std::int64_t i0 = 0; i0 < g.w_pad; i0 += kBlock)
                for (std::int64_t ix = i0; ix < i0 + kBlock; ++ix) {
                    const T v = row[ix], b = down[ix];
                    const std::int32_t gt = -std::int32_t(v > b), eq = std::int32_t(v == b);
                    down_tie[ix] = (down_tie[ix] | eq) & ~gt;
                    down_at[ix] = (down_at[ix] & ~gt) | ((base + std::int32_t(ix)) & gt);
                    down[ix] = v > b ? v : b;
                }
        }
        // Columns read past the row's end are padding again.
        fill_marks(down + w, down_at + w, down_tie + w, g.down_len - g.left - w);
        const T* dv = values;
        const std::int32_t* da = marks;
        const std::int32_t* dt = marks + g.lanes;
        for (std::int64_t k = 0; k < s; ++k) {
            T* pv = phase + k * phase_row;
            std::int32_t* pa = phase_at + k * phase_row;
            std::int32_t* pt = phase_tie + k * phase_row;
            if (s == 2)  // the usual overlapping pooling: a stride the vectoriser knows
                for (std::int64_t i = 0; i < g.phase_len; ++i) {
                    pv[i] = dv[2 * i + k];
                    pa[i] = da[2 * i + k];
                    pt[i] = dt[2 * i + k];
                }
            else
                for (std::int64_t i = 0; i < g.phase_len; ++i) {
                    pv[i] = dv[s * i + k];
                    pa[i] = da[s * i + k];
                    pt[i] = dt[s * i + k];
                }
        }
        fill_marks(best, at, tie, g.ow_pad);
        for (std::int64_t kx = 0; kx < g.size; ++kx) {
            const std::int64_t run = ((g.first + kx) % s) * phase_row + (g.first + kx) / s;
            const T* pv = phase + run;
            const std::int32_t* pa = phase_at + run;
            const std::int32_t* pt = phase_tie + run;
            for (std::int64_t o0 = 0; o0 < g.ow_pad; o0 += kBlock)
                for (std::int64_t ox = o0; ox < o0 + kBlock; ++ox) {
                    const T v = pv[ox], b = best[ox];
                    const std::int32_t gt = -std::int32_t(v > b), eq = std::int32_t(v == b);
                    tie[ox] = (pt[ox] & gt) | ((tie[ox] | eq) & ~gt);
                    at[ox] = (pa[ox] & gt) | (at[ox] & ~gt);
                    best[ox] = v > b ? v : b;
                }
        }
        for (std::int64_t ox = 0; ox < g.ow; ++ox) yp[oy * g.ow + ox] = best[ox];
        if (wp)
            for (std::int64_t ox = 0; ox < g.ow; ++ox) wp[oy * g.ow + ox] = tie[ox] ? -1 : at[ox];
    }
}

CONVNET_VECTOR_CLONES void max_pool_plane_f32(const float* xp, float* yp, std::int32_t* wp,
                                              const MaxPoolRows& g, bool last_plane,
                                              float* values, std::int32_t* marks) {
    max_pool_plane(xp, yp, wp, g, last_plane, values, marks);
}
CONVNET_VECTOR_CLONES void max_pool_plane_f64(const double* xp, double* yp, std::int32_t* wp,
                                              const MaxPoolRows& g, bool last_plane,
                                              double* values, std::int32_t* marks) {
    max_pool_plane(xp, yp, wp, g, last_plane, values, marks);
}
void max_pool_plane_any(const float* xp, float* yp, std::int32_t* wp, const MaxPoolRows& g,
                        bool last_plane, float* values, std::int32_t* marks) {
    max_pool_plane_f32(xp, yp, wp, g, last_plane, values, marks);
}
void max_pool_plane_any(const double* xp, double* yp, std::int32_t* wp, const MaxPoolRows& g,
                        bool last_plane, double* values, std::int32_t* marks) {
    max_pool_plane_f64(xp, yp, wp, g, last_plane, values, marks);
}

template <typename T>
void max_pool_forward_with_winners(const T* x, T* y, std::int64_t planes, std::int64_t h,
                                   std::int64_t w, std::int64_t oh, std::int64_t ow,
                                   const PoolParams& p, std::int32_t* winners,
                                   const NeuronParams* neuron) {
    const MaxPoolRows g(h, w, oh, ow, p);
    const int threads = threads_for_planes(planes, oh * ow);
    if constexpr (std::is_same_v<T, float>)
        if (cpu_has_avx512f() && pool_avx512::takes(p.stride_w, p.size_w)) {
            const pool_avx512::Plane geometry{h, w, oh, ow, p.stride_w, p.size_w, p.start_w,
                                              g.rows.lo.data(), g.rows.hi.data()};
            // Planes of at most 16 columns: one input row per vector.
            const bool narrow = pool_avx512::takes_narrow(w, ow, p.size_w);
            pool_avx512::NarrowColumns columns;
            if (narrow) pool_avx512::narrow_columns(geometry, &columns);
            blas::for_each_item(planes, threads, [&](std::int64_t plane, int) {
                const float* xp = x + plane * h * w;
                float* yp = y + plane * oh * ow;
                std::int32_t* wp = winners ? winners + plane * oh * ow : nullptr;
                if (narrow)
                    pool_avx512::narrow_max_plane(xp, yp, wp, geometry, columns);
                else
                    pool_avx512::max_plane(xp, yp, wp, geometry);
                if (neuron) neuron_in_place_cpu(yp, oh * ow, *neuron);
            });
            return;
        }
    Tensor values = blas::thread_rows(threads, g.lanes, dtype_of<T>());
    Tensor marks = blas::thread_rows(threads, 2 * g.lanes);  // int32 positions and ties
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num();
        T* v = values.data<T>() + t * values.dim(1);
        std::int32_t* m = static_cast<std::int32_t*>(marks.raw()) + t * marks.dim(1);
        max_pool_scratch(g, v, m);
#pragma omp for schedule(static)
        for (std::int64_t plane = 0; plane < planes; ++plane) {
            max_pool_plane_any(x + plane * h * w, y + plane * oh * ow,
                               winners ? winners + plane * oh * ow : nullptr, g,
                               plane == planes - 1, v, m);
            if (neuron) neuron_in_place_cpu(y + plane * oh * ow, oh * ow, *neuron);
        }
    }
}

}  // namespace

// Each output's gradient goes to its window's winner; a window without one (a tie) searches for
// every input equal to its maximum, as the plain backward does. Outputs are taken in order, so
// each input sums its contributions in the same order as there. The maximum of a tied window is
// found again from x, in forward's order of comparisons: y is not read, so that a layer may write
// a neuron's output in place of y (pool.h).
template <typename T>
void max_pool_backward_from_winners(const T* x, const T* dy, T* dx,
                                    std::int64_t planes, std::int64_t h, std::int64_t w,
                                    std::int64_t oh, std::int64_t ow, const PoolParams& p, T beta,
                                    const std::int32_t* winners, const NeuronParams* x_neuron) {
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
    blas::for_each_item(planes, threads_for_planes(planes, oh * ow), [&](std::int64_t plane, int) {
        const T* xp = x + plane * h * w;
        const T* dyp = dy + plane * oh * ow;
        const std::int32_t* wp = winners + plane * oh * ow;
        T* dxp = dx + plane * h * w;
        blas::scale_for_accumulation(dxp, h * w, beta);
        for (std::int64_t o = 0; o < oh * ow; ++o) {
            const T g = dyp[o];
            if (wp[o] >= 0) {
                dxp[wp[o]] += g;
                continue;
            }
            const std::int64_t oy = o / ow, ox = o % ow;
            T m = -std::numeric_limits<T>::infinity();
            for (std::int64_t iy = rows.lo[oy]; iy < rows.hi[oy]; ++iy)
                for (std::int64_t ix = cols.lo[ox]; ix < cols.hi[ox]; ++ix)
                    m = xp[iy * w + ix] > m ? xp[iy * w + ix] : m;
            for (std::int64_t iy = rows.lo[oy]; iy < rows.hi[oy]; ++iy)
                for (std::int64_t ix = cols.lo[ox]; ix < cols.hi[ox]; ++ix)
                    dxp[iy * w + ix] += xp[iy * w + ix] == m ? g : T(0);
        }
        if (x_neuron) neuron_gradient_in_place_cpu(xp, dxp, h * w, *x_neuron);
    });
}

// Average pooling, each output row in two passes that vectorise: down the window's rows over the
// whole input width (contiguous), then across each output's columns of that one row.
template <typename T>
void pool_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                      std::int64_t oh, std::int64_t ow, const PoolParams& p,
                      std::int32_t* winners, const NeuronParams* neuron) {
    if (p.mode == PoolMode::max)
        return max_pool_forward_with_winners(x, y, planes, h, w, oh, ow, p, winners, neuron);
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
    if constexpr (std::is_same_v<T, float>)
        if (cpu_has_avx512f() && pool_avx512::takes_narrow(w, ow, p.size_w)) {
            const pool_avx512::Plane geometry{h, w, oh, ow, p.stride_w, p.size_w, p.start_w,
                                              rows.lo.data(), rows.hi.data()};
            pool_avx512::NarrowColumns columns;
            pool_avx512::narrow_columns(geometry, &columns);
            blas::for_each_item(planes, threads_for_planes(planes, oh * ow),
                                [&](std::int64_t plane, int) {
                                    float* yp = y + plane * oh * ow;
                                    pool_avx512::narrow_avg_plane(x + plane * h * w, yp, geometry,
                                                                  columns);
                                    if (neuron) neuron_in_place_cpu(yp, oh * ow, *neuron);
                                });
            return;
        }
    for_each_plane<T>(planes, oh * ow, w, [&](std::int64_t plane, T* down) {
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
        if (neuron) neuron_in_place_cpu(yp, oh * ow, *neuron);
    });
}

// The outputs whose windows hold each input position along one axis, as `depth` rows of `size`
// indices: row k, position i holds the k-th covering output, or `none` past the last. The
// covering outputs are contiguous and ascending, because the windows' bounds never decrease from
// one output to the next.
struct Covers {
    Covers(const Windows& win, std::int64_t size, std::int64_t none) {
        const std::int64_t outputs = std::int64_t(win.lo.size());
        std::vector<std::int64_t> lo(size), hi(size);
        std::int64_t first = 0;
        for (std::int64_t i = 0; i < size; ++i) {
            while (first < outputs && win.hi[first] <= i) ++first;
            std::int64_t last = first;
            while (last < outputs && win.lo[last] <= i) ++last;
            lo[i] = first, hi[i] = last;
            depth = std::max(depth, last - first);
        }
        at.assign(depth * size, std::int32_t(none));
        for (std::int64_t i = 0; i < size; ++i)
            for (std::int64_t o = lo[i]; o < hi[i]; ++o) at[(o - lo[i]) * size + i] = std::int32_t(o);
    }
    std::int64_t depth = 0;
    std::vector<std::int32_t> at;
};

template <typename T>
CONVNET_ALWAYS_INLINE void avg_pool_plane_backward(const T* dyp, T* dxp, std::int64_t h,
                                                   std::int64_t w, std::int64_t oh,
                                                   std::int64_t ow, const Windows& rows,
                                                   const Windows& cols, const Covers& row_covers,
                                                   const Covers& col_covers, T beta, T* across) {
    // across: [oy][ix]; share: ow values, then a 0 for `none`; cols_in: each window's columns.
    T* share = across + oh * w;
    T* cols_in = share + ow + 1;
    share[ow] = T(0);
    for (std::int64_t ox = 0; ox < ow; ++ox) cols_in[ox] = T(cols.hi[ox] - cols.lo[ox]);
    for (std::int64_t oy = 0; oy < oh; ++oy) {
        const T rows_in = T(rows.hi[oy] - rows.lo[oy]);
        for (std::int64_t ox = 0; ox < ow; ++ox)
            share[ox] = dyp[oy * ow + ox] / (rows_in * cols_in[ox]);
        T* row = across + oy * w;
        const std::int32_t* at = col_covers.at.data();
#pragma omp simd
        for (std::int64_t ix = 0; ix < w; ++ix) row[ix] = T(0) + share[at[ix]];
        for (std::int64_t k = 1; k < col_covers.depth; ++k)
#pragma omp simd
            for (std::int64_t ix = 0; ix < w; ++ix) row[ix] += share[at[k * w + ix]];
    }
    for (std::int64_t iy = 0; iy < h; ++iy) {
        T* drow = dxp + iy * w;
        blas::scale_for_accumulation(drow, w, beta);
        for (std::int64_t k = 0; k < row_covers.depth; ++k) {
            const std::int32_t oy = row_covers.at[k * h + iy];
            if (oy == oh) break;
            const T* row = across + oy * w;
            for (std::int64_t ix = 0; ix < w; ++ix) drow[ix] += row[ix];
        }
    }
}

#define CONVNET_AVG_POOL_BACKWARD(T, NAME)                                                    \
    CONVNET_VECTOR_CLONES void NAME(const T* dyp, T* dxp, std::int64_t h, std::int64_t w,     \
                                    std::int64_t oh, std::int64_t ow, const Windows& rows,    \
                                    const Windows& cols, const Covers& row_covers,            \
                                    const Covers& col_covers, T beta, T* across) {            \
        avg_pool_plane_backward(dyp, dxp, h, w, oh, ow, rows, cols, row_covers, col_covers,   \
                                beta, across);                                                \
    }                                                                                         \
    inline void avg_pool_plane_backward_any(const T* dyp, T* dxp, std::int64_t h,             \
                                            std::int64_t w, std::int64_t oh, std::int64_t ow, \
                                            const Windows& rows, const Windows& cols,         \
                                            const Covers& rc, const Covers& cc, T beta,       \
                                            T* across) {                                      \
        NAME(dyp, dxp, h, w, oh, ow, rows, cols, rc, cc, beta, across);                       \
    }
CONVNET_AVG_POOL_BACKWARD(float, avg_pool_plane_backward_f32)
CONVNET_AVG_POOL_BACKWARD(double, avg_pool_plane_backward_f64)
#undef CONVNET_AVG_POOL_BACKWARD

// Average pooling's gradient is separable: every input of an output's window receives the
// output's share, dy over the window's in-image pixel count. Per output row, each input column
// sums the shares of the windows that cover it (gathered: no chain of additions through memory);
// then each input row is the sum of the rows of the windows that cover it, contiguous vector
// adds. The shares reach each input in output order, as in a per-window loop.
template <typename T>
void avg_pool_backward(const T* x, const T* dy, T* dx, std::int64_t planes, std::int64_t h,
                       std::int64_t w, std::int64_t oh, std::int64_t ow, const PoolParams& p,
                       T beta, const NeuronParams* x_neuron) {
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
    const Covers row_covers(rows, h, oh), col_covers(cols, w, ow);
    if constexpr (std::is_same_v<T, float>)
        if (cpu_has_avx512f() && pool_avx512::takes_avg_backward(w, ow, col_covers.depth)) {
            std::vector<float> rows_in(oh), cols_in(ow);
            for (std::int64_t oy = 0; oy < oh; ++oy) rows_in[oy] = float(rows.hi[oy] - rows.lo[oy]);
            for (std::int64_t ox = 0; ox < ow; ++ox) cols_in[ox] = float(cols.hi[ox] - cols.lo[ox]);
            const pool_avx512::AvgBackwardPlane geometry{
                h, w, oh, ow, rows_in.data(), cols_in.data(), col_covers.at.data(),
                col_covers.depth, row_covers.at.data(), row_covers.depth};
            for_each_plane<float>(planes, oh * ow, oh * 16, [&](std::int64_t plane, float* across) {
                pool_avx512::avg_plane_backward(dy + plane * oh * ow, dx + plane * h * w, beta,
                                                geometry, across);
                if (x_neuron)
                    neuron_gradient_in_place_cpu(x + plane * h * w, dx + plane * h * w, h * w,
                                                 *x_neuron);
            });
            return;
        }
    for_each_plane<T>(planes, oh * ow, oh * w + 2 * ow + 1, [&](std::int64_t plane, T* across) {
        avg_pool_plane_backward_any(dy + plane * oh * ow, dx + plane * h * w, h, w, oh, ow, rows,
                                    cols, row_covers, col_covers, beta, across);
        if (x_neuron)
            neuron_gradient_in_place_cpu(x + plane * h * w, dx + plane * h * w, h * w, *x_neuron);
    });
}

// Max pooling sends each output's gradient to every input of its window equal to the maximum
// (ties all receive it, as in cuda-convnet and our CUDA kernel). Without the winners forward
// kept (the op called on its own), per output row the outputs' maxima and gradients are first
// spread over the input columns, one row per window offset k (an input column lies at offset k
// of at most one window); then each input row of the window takes, column by column, the
// gradient of every offset whose maximum it equals: a branch-free loop over contiguous memory,
// where a per-window loop would mispredict once per window and not vectorise. Contributions
// arrive in output order, as in a per-window loop.
template <typename T>
void pool_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                       std::int64_t h, std::int64_t w, std::int64_t oh, std::int64_t ow,
                       const PoolParams& p, T beta, const std::int32_t* winners,
                       const NeuronParams* x_neuron) {
    if (p.mode == PoolMode::avg)
        return avg_pool_backward(x, dy, dx, planes, h, w, oh, ow, p, beta, x_neuron);
    if (winners)
        return max_pool_backward_from_winners(x, dy, dx, planes, h, w, oh, ow, p, beta, winners,
                                              x_neuron);
    const Windows rows(oh, p.size_h, p.stride_h, p.start_h, h);
    const Windows cols(ow, p.size_w, p.stride_w, p.start_w, w);
    const int offsets = p.size_w;
    for_each_plane<T>(planes, oh * ow, 2 * offsets * w, [&](std::int64_t plane, T* maxima) {
        // maxima and grads: [k][ix]
        T* grads = maxima + offsets * w;                                          // [k][ix]
        const T* xp = x + plane * h * w;
        const T* yp = y + plane * oh * ow;
        const T* dyp = dy + plane * oh * ow;
        T* dxp = dx + plane * h * w;
        blas::scale_for_accumulation(dxp, h * w, beta);
        for (std::int64_t oy = 0; oy < oh; ++oy) {
            std::fill(maxima, maxima + offsets * w, std::numeric_limits<T>::quiet_NaN());
            std::fill(grads, grads + offsets * w, T(0));
            for (std::int64_t ox = 0; ox < ow; ++ox) {
                const std::int64_t first = std::int64_t(p.start_w) + ox * p.stride_w;
                for (std::int64_t ix = cols.lo[ox]; ix < cols.hi[ox]; ++ix) {
                    maxima[(ix - first) * w + ix] = yp[oy * ow + ox];
                    grads[(ix - first) * w + ix] = dyp[oy * ow + ox];
                }
            }
            for (std::int64_t iy = rows.lo[oy]; iy < rows.hi[oy]; ++iy) {
                const T* row = xp + iy * w;
                T* drow = dxp + iy * w;
                // Higher offsets belong to earlier outputs: k descending adds in output order.
                for (int k = offsets - 1; k >= 0; --k) {
                    const T* m = maxima + k * w;
                    const T* g = grads + k * w;
                    for (std::int64_t ix = 0; ix < w; ++ix) {
                        const T share = g[ix];  // loaded unconditionally: the select vectorises
                        drow[ix] += row[ix] == m[ix] ? share : T(0);
                    }
                }
            }
        }
        if (x_neuron) neuron_gradient_in_place_cpu(xp, dxp, h * w, *x_neuron);
    });
}

template void pool_forward_cpu<float>(const float*, float*, std::int64_t, std::int64_t,
                                      std::int64_t, std::int64_t, std::int64_t,
                                      const PoolParams&, std::int32_t*, const NeuronParams*);
template void pool_forward_cpu<double>(const double*, double*, std::int64_t, std::int64_t,
                                       std::int64_t, std::int64_t, std::int64_t,
                                       const PoolParams&, std::int32_t*, const NeuronParams*);
template void pool_backward_cpu<float>(const float*, const float*, const float*, float*,
                                       std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                       std::int64_t, const PoolParams&, float, const std::int32_t*,
                                       const NeuronParams*);
template void pool_backward_cpu<double>(const double*, const double*, const double*, double*,
                                        std::int64_t, std::int64_t, std::int64_t, std::int64_t,
                                        std::int64_t, const PoolParams&, double,
                                        const std::int32_t*, const NeuronParams*);

}  // namespace convnet
