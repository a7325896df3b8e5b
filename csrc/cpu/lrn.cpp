// Cross-map LRN on the CPU, one image per OpenMP thread. Sums run over whole rows of H*W pixels
// so the inner loops are contiguous and vectorise; windows are summed directly (no running sum,
// whose subtractions would lose precision in float).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/blas.h"
#include "cpu/vector_clones.h"
#include "math/norm_math.h"
#include "ops/lrn.h"

namespace convnet {

namespace {
// denom[f] = k + alpha * sum_{c in W(f)} x[c]^2 for one image; sq is scratch of C*HW.
template <typename T>
CONVNET_ALWAYS_INLINE void denominators(const T* x, T* denom, T* sq, std::int64_t c,
                                        std::int64_t hw, const LrnParams& p) {
    for (std::int64_t i = 0; i < c * hw; ++i) sq[i] = x[i] * x[i];
    for (std::int64_t f = 0; f < c; ++f) {
        std::int64_t first, last;
        p.window(f, c, &first, &last);
        T* d = denom + f * hw;
        for (std::int64_t i = 0; i < hw; ++i) d[i] = T(0);
        for (std::int64_t j = first; j <= last; ++j) {
            const T* s = sq + j * hw;
            for (std::int64_t i = 0; i < hw; ++i) d[i] += s[i];
        }
        const T alpha = T(p.alpha), k = T(p.k);
        for (std::int64_t i = 0; i < hw; ++i) d[i] = k + alpha * d[i];
    }
}

template <typename T>
CONVNET_ALWAYS_INLINE void forward_image(const T* x, T* y, T* denom, T* sq, std::int64_t c,
                                         std::int64_t hw, const LrnParams& p) {
    denominators(x, denom, sq, c, hw, p);
    const T beta = T(p.beta);
    for (std::int64_t i = 0; i < c * hw; ++i) y[i] = x[i] * pow_neg(denom[i], beta);
}

// dx[j] = dy[j] d[j]^-beta - 2 alpha beta x[j] sum_{i : j in W(i)} dy[i] y[i] / d[i]
template <typename T>
CONVNET_ALWAYS_INLINE void backward_image(const T* x, const T* y, const T* dy, T* dx, T* denom,
                                          T* scratch, T* acc, std::int64_t c, std::int64_t hw,
                                          const LrnParams& p, T beta_acc) {
    const T beta = T(p.beta), coeff = T(-2) * T(p.alpha) * T(p.beta);
    denominators(x, denom, scratch, c, hw, p);
    T* ratio = scratch;  // dy * y / d, reusing the squares' buffer
    for (std::int64_t i = 0; i < c * hw; ++i) ratio[i] = dy[i] * y[i] / denom[i];
    for (std::int64_t i = 0; i < c * hw; ++i) acc[i] = T(0);
    for (std::int64_t f = 0; f < c; ++f) {
        std::int64_t first, last;
        p.window(f, c, &first, &last);
        const T* r = ratio + f * hw;
        for (std::int64_t j = first; j <= last; ++j) {
            T* a = acc + j * hw;
            for (std::int64_t i = 0; i < hw; ++i) a[i] += r[i];
        }
    }
    for (std::int64_t i = 0; i < c * hw; ++i) {
        const T g = dy[i] * pow_neg(denom[i], beta) + coeff * x[i] * acc[i];
        dx[i] = beta_acc == T(0) ? g : beta_acc * dx[i] + g;
    }
}

// Each image's loops compiled for AVX-512 and the baseline (vector_clones.h): the square roots
// and divisions of d^-0.75 vectorise 16 wide where the CPU allows.
#define CONVNET_LRN_IMAGES(T, SUFFIX)                                                           \
    CONVNET_VECTOR_CLONES void forward_image_##SUFFIX(const T* x, T* y, T* denom, T* sq,        \
                                                      std::int64_t c, std::int64_t hw,          \
                                                      const LrnParams& p) {                     \
        forward_image(x, y, denom, sq, c, hw, p);                                               \
    }                                                                                           \
    CONVNET_VECTOR_CLONES void backward_image_##SUFFIX(                                         \
        const T* x, const T* y, const T* dy, T* dx, T* denom, T* scratch, T* acc,               \
        std::int64_t c, std::int64_t hw, const LrnParams& p, T beta_acc) {                      \
        backward_image(x, y, dy, dx, denom, scratch, acc, c, hw, p, beta_acc);                  \
    }                                                                                           \
    void forward_image_any(const T* x, T* y, T* denom, T* sq, std::int64_t c, std::int64_t hw,  \
                           const LrnParams& p) {                                                \
        forward_image_##SUFFIX(x, y, denom, sq, c, hw, p);                                      \
    }                                                                                           \
    void backward_image_any(const T* x, const T* y, const T* dy, T* dx, T* denom, T* scratch,   \
                            T* acc, std::int64_t c, std::int64_t hw, const LrnParams& p,        \
                            T beta_acc) {                                                       \
        backward_image_##SUFFIX(x, y, dy, dx, denom, scratch, acc, c, hw, p, beta_acc);         \
    }
CONVNET_LRN_IMAGES(float, f32)
CONVNET_LRN_IMAGES(double, f64)
#undef CONVNET_LRN_IMAGES
}  // namespace

template <typename T>
void lrn_forward_cpu(const T* x, T* y, std::int64_t n, std::int64_t c, std::int64_t hw,
                     const LrnParams& p) {
    const int threads = blas::threads_for(n);
#pragma omp parallel num_threads(threads)
    {
        std::vector<T> denom(c * hw), sq(c * hw);
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t img = 0; img < n; ++img)
            forward_image_any(x + img * c * hw, y + img * c * hw, denom.data(), sq.data(), c, hw,
                              p);
    }
}

template <typename T>
void lrn_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t c,
                      std::int64_t hw, const LrnParams& p, T beta_acc) {
    const int threads = blas::threads_for(n);
#pragma omp parallel num_threads(threads)
    {
        std::vector<T> denom(c * hw), scratch(c * hw), acc(c * hw);
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t img = 0; img < n; ++img) {
            const std::int64_t off = img * c * hw;
            backward_image_any(x + off, y + off, dy + off, dx + off, denom.data(), scratch.data(),
                               acc.data(), c, hw, p, beta_acc);
        }
    }
}

template void lrn_forward_cpu<float>(const float*, float*, std::int64_t, std::int64_t,
                                     std::int64_t, const LrnParams&);
template void lrn_forward_cpu<double>(const double*, double*, std::int64_t, std::int64_t,
                                      std::int64_t, const LrnParams&);
template void lrn_backward_cpu<float>(const float*, const float*, const float*, float*,
                                      std::int64_t, std::int64_t, std::int64_t, const LrnParams&,
                                      float);
template void lrn_backward_cpu<double>(const double*, const double*, const double*, double*,
                                       std::int64_t, std::int64_t, std::int64_t, const LrnParams&,
                                       double);

}  // namespace convnet
