// eltsum / eltmax on the CPU: threaded element-wise loops.
#include "ops/eltwise.h"

namespace convnet {

namespace {
constexpr std::int64_t kParallelThreshold = 1 << 16;
}

template <typename T>
void eltsum_forward_cpu(const std::vector<const T*>& xs, const std::vector<double>& coeffs, T* y,
                        std::int64_t n) {
    const std::size_t inputs = xs.size();
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i) {
        T s = 0;
        for (std::size_t k = 0; k < inputs; ++k) s += T(coeffs[k]) * xs[k][i];
        y[i] = s;
    }
}

template <typename T>
void scale_cpu(const T* in, T c, T* out, std::int64_t n, T beta) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i)
        out[i] = beta == T(0) ? c * in[i] : beta * out[i] + c * in[i];
}

template <typename T>
void eltmax_forward_cpu(const std::vector<const T*>& xs, T* y, std::int64_t n) {
    const std::size_t inputs = xs.size();
#pragma omp parallel for schedule(static) if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i) {
        T m = xs[0][i];
        for (std::size_t k = 1; k < inputs; ++k) m = xs[k][i] > m ? xs[k][i] : m;
        y[i] = m;
    }
}

template <typename T>
void eltmax_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, T beta) {
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
    for (std::int64_t i = 0; i < n; ++i) {
        const T g = x[i] == y[i] ? dy[i] : T(0);
        dx[i] = beta == T(0) ? g : beta * dx[i] + g;
    }
}

#define CONVNET_INSTANTIATE(T)                                                                    \
    template void eltsum_forward_cpu<T>(const std::vector<const T*>&, const std::vector<double>&, \
                                        T*, std::int64_t);                                        \
    template void scale_cpu<T>(const T*, T, T*, std::int64_t, T);                                 \
    template void eltmax_forward_cpu<T>(const std::vector<const T*>&, T*, std::int64_t);          \
    template void eltmax_backward_cpu<T>(const T*, const T*, const T*, T*, std::int64_t, T);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

}  // namespace convnet
