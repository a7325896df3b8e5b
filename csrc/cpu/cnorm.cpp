// Contrast normalisation within each map on the CPU, one map per iteration of a threaded loop.
// Forward: m = windowed mean of x, e = x - m, d = k + alpha * box(e^2), y = x * d^-beta.
// Backward, exact: with a = -alpha*beta*dy*y/d and g = 2*e*box'(a) (box' the mirrored window),
//   dx = dy * d^-beta + g - box'(g / count)
// because e = x - M x and the mean operator M has the transpose box'(. / count).
#include <algorithm>

#include "core/tensor.h"
#include "cpu/blas.h"
#include "cpu/box_sum.h"
#include "cpu/vector_clones.h"
#include "math/norm_math.h"
#include "ops/rnorm.h"

namespace convnet {

namespace {
// A thread's scratch for one map: five rows of h*w.
template <typename T>
struct Rows {
    Rows(T* base, std::int64_t n)
        : dev(base), denom(base + n), a(base + 2 * n), b(base + 3 * n), tmp(base + 4 * n) {}
    T *dev, *denom, *a, *b, *tmp;
};
constexpr std::int64_t kRows = 5;

// Fills dev = x - mean and denom for one map; the mean divides by the window's in-image pixels
// (win.pixels, counted once per call).
template <typename T>
CONVNET_ALWAYS_INLINE void prepare(const T* x, const Rows<T>& s, const BoxWindow& win,
                                   const RnormParams& p) {
    const std::int64_t n = win.h * win.w;
    box_sum(x, s.a, s.tmp, win);
    for (std::int64_t i = 0; i < n; ++i) {
        s.dev[i] = x[i] - s.a[i] / T(win.pixels[i]);
        s.b[i] = s.dev[i] * s.dev[i];
    }
    box_sum(s.b, s.denom, s.tmp, win);
    for (std::int64_t i = 0; i < n; ++i) s.denom[i] = T(p.k) + T(p.alpha) * s.denom[i];
}

template <typename T>
CONVNET_ALWAYS_INLINE void forward_plane(const T* x, T* y, T* scratch, const BoxWindow& win,
                                         const RnormParams& p) {
    const Rows<T> s(scratch, win.h * win.w);
    prepare(x, s, win, p);
    for (std::int64_t i = 0; i < win.h * win.w; ++i) y[i] = x[i] * pow_neg(s.denom[i], T(p.beta));
}

template <typename T>
CONVNET_ALWAYS_INLINE void backward_plane(const T* x, const T* y, const T* dy, T* dx, T* scratch,
                                          const BoxWindow& win, const BoxWindow& mirrored,
                                          const RnormParams& p, T beta_acc) {
    const std::int64_t n = win.h * win.w;
    const Rows<T> s(scratch, n);
    T* g = scratch + kRows * n;
    prepare(x, s, win, p);
    for (std::int64_t i = 0; i < n; ++i)
        s.a[i] = -T(p.alpha) * T(p.beta) * dy[i] * y[i] / s.denom[i];
    box_sum(s.a, s.b, s.tmp, mirrored);
    for (std::int64_t i = 0; i < n; ++i) {
        g[i] = T(2) * s.dev[i] * s.b[i];
        s.a[i] = g[i] / T(win.pixels[i]);
    }
    box_sum(s.a, s.b, s.tmp, mirrored);
    for (std::int64_t i = 0; i < n; ++i) {
        const T v = dy[i] * pow_neg(s.denom[i], T(p.beta)) + g[i] - s.b[i];
        dx[i] = beta_acc == T(0) ? v : beta_acc * dx[i] + v;
    }
}

// Each map's loops compiled for AVX-512 and the baseline (box_sum.h).
CONVNET_MAP_NORM_CLONES(float, f32)
CONVNET_MAP_NORM_CLONES(double, f64)
}  // namespace

template <typename T>
void cnorm_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                       const RnormParams& p) {
    const BoxWindow win(h, w, p.size, p.pre);
    const int threads = blas::threads_for(planes);
    Tensor scratch = blas::thread_rows(threads, kRows * h * w, dtype_of<T>());
    blas::for_each_item(planes, threads, [&](std::int64_t plane, int t) {
        forward_plane_any(x + plane * h * w, y + plane * h * w,
                          scratch.data<T>() + t * scratch.dim(1), win, p);
    });
}

template <typename T>
void cnorm_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                        std::int64_t h, std::int64_t w, const RnormParams& p, T beta_acc) {
    const BoxWindow win(h, w, p.size, p.pre), mirrored(h, w, p.size, p.size - 1 - p.pre);
    const int threads = blas::threads_for(planes);
    Tensor scratch = blas::thread_rows(threads, (kRows + 1) * h * w, dtype_of<T>());
    blas::for_each_item(planes, threads, [&](std::int64_t plane, int t) {
        const std::int64_t off = plane * h * w;
        backward_plane_any(x + off, y + off, dy + off, dx + off,
                           scratch.data<T>() + t * scratch.dim(1), win, mirrored, p, beta_acc);
    });
}

#define CONVNET_INSTANTIATE(T)                                                                 \
    template void cnorm_forward_cpu<T>(const T*, T*, std::int64_t, std::int64_t, std::int64_t, \
                                       const RnormParams&);                                    \
    template void cnorm_backward_cpu<T>(const T*, const T*, const T*, T*, std::int64_t,         \
                                        std::int64_t, std::int64_t, const RnormParams&, T);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

}  // namespace convnet
