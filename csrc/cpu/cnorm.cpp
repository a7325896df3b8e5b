// Contrast normalisation within each map on the CPU, one map per iteration of a threaded loop.
// Forward: m = windowed mean of x, e = x - m, d = k + alpha * box(e^2), y = x * d^-beta.
// Backward, exact: with a = -alpha*beta*dy*y/d and g = 2*e*box'(a) (box' the mirrored window),
//   dx = dy * d^-beta + g - box'(g / count)
// because e = x - M x and the mean operator M has the transpose box'(. / count).
#include <algorithm>
#include <vector>

#include "cpu/blas.h"
#include "cpu/box_sum.h"
#include "math/norm_math.h"
#include "ops/rnorm.h"

namespace convnet {

namespace {
template <typename T>
struct Plane {
    Plane(std::int64_t h, std::int64_t w)
        : count(h * w), dev(h * w), denom(h * w), a(h * w), b(h * w), tmp(h * w) {}
    std::vector<T> count, dev, denom, a, b, tmp;
};

// Fills count (in-image pixels of each window), dev = x - mean and denom for one map.
template <typename T>
void prepare(const T* x, Plane<T>& s, std::int64_t h, std::int64_t w, const RnormParams& p) {
    for (std::int64_t i = 0; i < h; ++i)
        for (std::int64_t j = 0; j < w; ++j) {
            const std::int64_t rows = std::min<std::int64_t>(i - p.pre + p.size, h) -
                                      std::max<std::int64_t>(i - p.pre, 0);
            const std::int64_t cols = std::min<std::int64_t>(j - p.pre + p.size, w) -
                                      std::max<std::int64_t>(j - p.pre, 0);
            s.count[i * w + j] = T(rows * cols);
        }
    box_sum(x, s.a.data(), s.tmp.data(), h, w, p.size, p.pre);
    for (std::int64_t i = 0; i < h * w; ++i) {
        s.dev[i] = x[i] - s.a[i] / s.count[i];
        s.b[i] = s.dev[i] * s.dev[i];
    }
    box_sum(s.b.data(), s.denom.data(), s.tmp.data(), h, w, p.size, p.pre);
    for (std::int64_t i = 0; i < h * w; ++i) s.denom[i] = T(p.k) + T(p.alpha) * s.denom[i];
}
}  // namespace

template <typename T>
void cnorm_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                       const RnormParams& p) {
    const int threads = blas::threads_for(planes);
#pragma omp parallel num_threads(threads)
    {
        Plane<T> s(h, w);
#pragma omp for schedule(static)
        for (std::int64_t plane = 0; plane < planes; ++plane) {
            const T* xp = x + plane * h * w;
            T* yp = y + plane * h * w;
            prepare(xp, s, h, w, p);
            for (std::int64_t i = 0; i < h * w; ++i)
                yp[i] = xp[i] * pow_neg(s.denom[i], T(p.beta));
        }
    }
}

template <typename T>
void cnorm_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                        std::int64_t h, std::int64_t w, const RnormParams& p, T beta_acc) {
    const int threads = blas::threads_for(planes);
    const int mirror = p.size - 1 - p.pre;
#pragma omp parallel num_threads(threads)
    {
        Plane<T> s(h, w);
        std::vector<T> g(h * w);
#pragma omp for schedule(static)
        for (std::int64_t plane = 0; plane < planes; ++plane) {
            const std::int64_t off = plane * h * w;
            prepare(x + off, s, h, w, p);
            for (std::int64_t i = 0; i < h * w; ++i)
                s.a[i] = -T(p.alpha) * T(p.beta) * dy[off + i] * y[off + i] / s.denom[i];
            box_sum(s.a.data(), s.b.data(), s.tmp.data(), h, w, p.size, mirror);
            for (std::int64_t i = 0; i < h * w; ++i) {
                g[i] = T(2) * s.dev[i] * s.b[i];
                s.a[i] = g[i] / s.count[i];
            }
            box_sum(s.a.data(), s.b.data(), s.tmp.data(), h, w, p.size, mirror);
            for (std::int64_t i = 0; i < h * w; ++i) {
                const T v = dy[off + i] * pow_neg(s.denom[i], T(p.beta)) + g[i] - s.b[i];
                dx[off + i] = beta_acc == T(0) ? v : beta_acc * dx[off + i] + v;
            }
        }
    }
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
