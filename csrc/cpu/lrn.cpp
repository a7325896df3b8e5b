// Cross-map LRN on the CPU, one image per OpenMP thread. Sums run over whole rows of H*W pixels
// so the inner loops are contiguous and vectorise; windows are summed directly (no running sum,
// whose subtractions would lose precision in float).
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/blas.h"
#include "math/norm_math.h"
#include "ops/lrn.h"

namespace convnet {

namespace {
// denom[f] = k + alpha * sum_{c in W(f)} x[c]^2 for one image; sq is scratch of C*HW.
template <typename T>
void denominators(const T* x, T* denom, T* sq, std::int64_t c, std::int64_t hw,
                  const LrnParams& p) {
    for (std::int64_t i = 0; i < c * hw; ++i) sq[i] = x[i] * x[i];
    for (std::int64_t f = 0; f < c; ++f) {
        std::int64_t first, last;
        p.window(f, c, &first, &last);
        T* d = denom + f * hw;
        std::fill(d, d + hw, T(0));
        for (std::int64_t j = first; j <= last; ++j) {
            const T* s = sq + j * hw;
            for (std::int64_t i = 0; i < hw; ++i) d[i] += s[i];
        }
        const T alpha = T(p.alpha), k = T(p.k);
        for (std::int64_t i = 0; i < hw; ++i) d[i] = k + alpha * d[i];
    }
}
}  // namespace

template <typename T>
void lrn_forward_cpu(const T* x, T* y, std::int64_t n, std::int64_t c, std::int64_t hw,
                     const LrnParams& p) {
    const int threads = blas::threads_for(n);
    const T beta = T(p.beta);
#pragma omp parallel num_threads(threads)
    {
        std::vector<T> denom(c * hw), sq(c * hw);
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t img = 0; img < n; ++img) {
            const T* xi = x + img * c * hw;
            T* yi = y + img * c * hw;
            denominators(xi, denom.data(), sq.data(), c, hw, p);
            for (std::int64_t i = 0; i < c * hw; ++i) yi[i] = xi[i] * pow_neg(denom[i], beta);
        }
    }
}

// dx[j] = dy[j] d[j]^-beta - 2 alpha beta x[j] sum_{i : j in W(i)} dy[i] y[i] / d[i]
template <typename T>
void lrn_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, std::int64_t c,
                      std::int64_t hw, const LrnParams& p, T beta_acc) {
    const int threads = blas::threads_for(n);
    const T beta = T(p.beta), coeff = T(-2) * T(p.alpha) * T(p.beta);
#pragma omp parallel num_threads(threads)
    {
        std::vector<T> denom(c * hw), scratch(c * hw), acc(c * hw);
#pragma omp for schedule(dynamic, 1)
        for (std::int64_t img = 0; img < n; ++img) {
            const std::int64_t off = img * c * hw;
            denominators(x + off, denom.data(), scratch.data(), c, hw, p);
            T* ratio = scratch.data();  // dy * y / d, reusing the squares' buffer
            for (std::int64_t i = 0; i < c * hw; ++i) ratio[i] = dy[off + i] * y[off + i] / denom[i];
            std::fill(acc.begin(), acc.end(), T(0));
            for (std::int64_t f = 0; f < c; ++f) {
                std::int64_t first, last;
                p.window(f, c, &first, &last);
                const T* r = ratio + f * hw;
                for (std::int64_t j = first; j <= last; ++j) {
                    T* a = acc.data() + j * hw;
                    for (std::int64_t i = 0; i < hw; ++i) a[i] += r[i];
                }
            }
            for (std::int64_t i = 0; i < c * hw; ++i) {
                const T g = dy[off + i] * pow_neg(denom[i], beta) + coeff * x[off + i] * acc[i];
                dx[off + i] = beta_acc == T(0) ? g : beta_acc * dx[off + i] + g;
            }
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
