// Same-map response normalisation on the CPU, one map per iteration of a threaded loop. The
// window sums are separable box sums (rows, then columns) over clipped windows, each pass one
// loop over the whole map (box_sum.h), compiled for AVX-512 and the baseline.
#include <algorithm>
#include <cmath>

#include "core/tensor.h"
#include "cpu/blas.h"
#include "cpu/box_sum.h"
#include "cpu/vector_clones.h"
#include "math/norm_math.h"
#include "ops/rnorm.h"

namespace convnet {

namespace {
template <typename T>
CONVNET_ALWAYS_INLINE void denominators(const T* x, T* denom, T* sq, T* tmp, const BoxWindow& b,
                                        const RnormParams& p) {
    const std::int64_t n = b.h * b.w;
    for (std::int64_t i = 0; i < n; ++i) sq[i] = x[i] * x[i];
    box_sum(sq, denom, tmp, b);
    for (std::int64_t i = 0; i < n; ++i) denom[i] = T(p.k) + T(p.alpha) * denom[i];
}

template <typename T>
CONVNET_ALWAYS_INLINE void forward_plane(const T* x, T* y, T* scratch, const BoxWindow& b,
                                         const RnormParams& p) {
    const std::int64_t n = b.h * b.w;
    T* denom = scratch;
    denominators(x, denom, scratch + n, scratch + 2 * n, b, p);
    for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] * pow_neg(denom[i], T(p.beta));
}

// dx[j] = dy[j] d[j]^-beta - 2 alpha beta x[j] sum_{i : j in W(i)} dy[i] y[i] / d[i]; the
// pixels i whose window holds j form the mirrored window (`mirrored`, offset size - 1 - pre).
template <typename T>
CONVNET_ALWAYS_INLINE void backward_plane(const T* x, const T* y, const T* dy, T* dx, T* scratch,
                                          const BoxWindow& b, const BoxWindow& mirrored,
                                          const RnormParams& p, T beta_acc) {
    const std::int64_t n = b.h * b.w;
    T *denom = scratch, *ratio = scratch + n, *tmp = scratch + 2 * n, *acc = scratch + 3 * n;
    const T coeff = T(-2) * T(p.alpha) * T(p.beta);
    denominators(x, denom, ratio, tmp, b, p);
    for (std::int64_t i = 0; i < n; ++i) ratio[i] = dy[i] * y[i] / denom[i];
    box_sum(ratio, acc, tmp, mirrored);
    for (std::int64_t i = 0; i < n; ++i) {
        const T g = dy[i] * pow_neg(denom[i], T(p.beta)) + coeff * x[i] * acc[i];
        dx[i] = beta_acc == T(0) ? g : beta_acc * dx[i] + g;
    }
}

// Each map's loops compiled for AVX-512 and the baseline (box_sum.h).
CONVNET_MAP_NORM_CLONES(float, f32)
CONVNET_MAP_NORM_CLONES(double, f64)
}  // namespace

template <typename T>
void rnorm_forward_cpu(const T* x, T* y, std::int64_t planes, std::int64_t h, std::int64_t w,
                       const RnormParams& p) {
    const BoxWindow b(h, w, p.size, p.pre);
    const int threads = blas::threads_for(planes);
    Tensor scratch = blas::thread_rows(threads, 3 * h * w, dtype_of<T>());
    blas::for_each_item(planes, threads, [&](std::int64_t plane, int t) {
        forward_plane_any(x + plane * h * w, y + plane * h * w,
                          scratch.data<T>() + t * scratch.dim(1), b, p);
    });
}

template <typename T>
void rnorm_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t planes,
                        std::int64_t h, std::int64_t w, const RnormParams& p, T beta_acc) {
    const BoxWindow b(h, w, p.size, p.pre), mirrored(h, w, p.size, p.size - 1 - p.pre);
    const int threads = blas::threads_for(planes);
    Tensor scratch = blas::thread_rows(threads, 4 * h * w, dtype_of<T>());
    blas::for_each_item(planes, threads, [&](std::int64_t plane, int t) {
        const std::int64_t off = plane * h * w;
        backward_plane_any(x + off, y + off, dy + off, dx + off,
                           scratch.data<T>() + t * scratch.dim(1), b, mirrored, p, beta_acc);
    });
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
