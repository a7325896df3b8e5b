// Same-map response normalisation on the CPU, one map per iteration of a threaded loop. The
// window sums are separable box sums (rows, then columns) over clipped windows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/blas.h"
#include "cpu/box_sum.h"
#include "math/norm_math.h"
#include "ops/rnorm.h"

namespace convnet {

namespace {
template <typename T>
void denominators(const T* x, T* denom, T* sq, T* tmp, std::int64_t h, std::int64_t w,
                  const RnormParams& p) {
    for (std::int64_t i = 0; i < h * w; ++i) sq[i] = x[i] * x[i];
    box_sum(sq, denom, tmp, h, w, p.size, p.pre);
    for (std::int64_t i = 0; i < h * w; ++i) denom[i] = T(p.k) + T(p.alpha) * denom[i];
}
}  // namespace

template <typename T>
void rnorm_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                       const RnormParams& p) {
    const int threads = blas::threads_for(planes);
#pragma omp parallel num_threads(threads)
    {
        std::vector<T> denom(h * w), sq(h * w), tmp(h * w);
#pragma omp for schedule(static)
        for (std::int64_t plane = 0; plane < planes; ++plane) {
            const T* xp = x + plane * h * w;
            T* yp = y + plane * h * w;
            denominators(xp, denom.data(), sq.data(), tmp.data(), h, w, p);
            for (std::int64_t i = 0; i < h * w; ++i)
                yp[i] = xp[i] * pow_neg(denom[i], T(p.beta));
        }
    }
}

// dx[j] = dy[j] d[j]^-beta - 2 alpha beta x[j] sum_{i : j in W(i)} dy[i] y[i] / d[i]; the
// pixels i whose window holds j form the mirrored window, offset size - 1 - pre.
template <typename T>
void rnorm_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                        std::int64_t h, std::int64_t w, const RnormParams& p, T beta_acc) {
    const int threads = blas::threads_for(planes);
    const T coeff = T(-2) * T(p.alpha) * T(p.beta);
#pragma omp parallel num_threads(threads)
    {
        std::vector<T> denom(h * w), scratch(h * w), tmp(h * w), acc(h * w);
#pragma omp for schedule(static)
        for (std::int64_t plane = 0; plane < planes; ++plane) {
            const std::int64_t off = plane * h * w;
            denominators(x + off, denom.data(), scratch.data(), tmp.data(), h, w, p);
            for (std::int64_t i = 0; i < h * w; ++i)
                scratch[i] = dy[off + i] * y[off + i] / denom[i];
            box_sum(scratch.data(), acc.data(), tmp.data(), h, w, p.size, p.size - 1 - p.pre);
            for (std::int64_t i = 0; i < h * w; ++i) {
                const T g =
                    dy[off + i] * pow_neg(denom[i], T(p.beta)) + coeff * x[off + i] * acc[i];
                dx[off + i] = beta_acc == T(0) ? g : beta_acc * dx[off + i] + g;
            }
        }
    }
}

#define CONVNET_INSTANTIATE(T)                                                                 \
    template void rnorm_forward_cpu<T>(const T*, T*, std::int64_t, std::int64_t, std::int64_t, \
                                       const RnormParams&);                                    \
    template void rnorm_backward_cpu<T>(const T*, const T*, const T*, T*, std::int64_t,         \
                                        std::int64_t, std::int64_t, const RnormParams&, T);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

}  // namespace convnet
