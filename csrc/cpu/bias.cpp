// CPU bias_add: threaded over positions so that the batch sum keeps a fixed order (deterministic).
#include "ops/bias.h"

namespace convnet {

template <typename T>
void bias_add_forward_cpu(T* y, const T* b, std::int64_t n, std::int64_t size) {
#pragma omp parallel for schedule(static) if (n * size > (1 << 15))
    for (std::int64_t i = 0; i < size; ++i)
        for (std::int64_t s = 0; s < n; ++s) y[s * size + i] += b[i];
}

template <typename T>
void bias_add_backward_cpu(const T* dy, T* db, std::int64_t n, std::int64_t size, T beta) {
#pragma omp parallel for schedule(static) if (n * size > (1 << 15))
    for (std::int64_t i = 0; i < size; ++i) {
        T sum = 0;
        for (std::int64_t s = 0; s < n; ++s) sum += dy[s * size + i];
        db[i] = beta == T(0) ? sum : beta * db[i] + sum;
    }
}

#define CONVNET_INSTANTIATE(T)                                                                    \
    template void bias_add_forward_cpu<T>(T*, const T*, std::int64_t, std::int64_t);             \
    template void bias_add_backward_cpu<T>(const T*, T*, std::int64_t, std::int64_t, T);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

}  // namespace convnet
