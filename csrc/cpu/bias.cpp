// CPU bias_add: rows in order, so the batch sum of every position has one fixed order.
#include "ops/bias.h"

namespace convnet {

template <typename T>
void bias_add_forward_cpu(T* y, const T* b, std::int64_t n, std::int64_t size) {
#pragma omp parallel for schedule(static) if (n * size > (1 << 15))
    for (std::int64_t s = 0; s < n; ++s) {
        T* row = y + s * size;
#pragma omp simd
        for (std::int64_t i = 0; i < size; ++i) row[i] += b[i];
    }
}

template <typename T>
void bias_add_backward_cpu(const T* dy, T* db, std::int64_t n, std::int64_t size, T beta) {
    // Threads own column blocks and walk the rows in order inside them: contiguous reads, and
    // every db[i] sums the samples in the same order whatever the thread count.
    constexpr std::int64_t kBlock = 1024;
    const std::int64_t blocks = (size + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (n * size > (1 << 15))
    for (std::int64_t blk = 0; blk < blocks; ++blk) {
        const std::int64_t lo = blk * kBlock, hi = lo + kBlock < size ? lo + kBlock : size;
        T sum[kBlock] = {};
        for (std::int64_t s = 0; s < n; ++s) {
            const T* row = dy + s * size;
#pragma omp simd
            for (std::int64_t i = lo; i < hi; ++i) sum[i - lo] += row[i];
        }
        for (std::int64_t i = lo; i < hi; ++i)
            db[i] = beta == T(0) ? sum[i - lo] : beta * db[i] + sum[i - lo];
    }
}

#define CONVNET_INSTANTIATE(T)                                                                    \
    template void bias_add_forward_cpu<T>(T*, const T*, std::int64_t, std::int64_t);             \
    template void bias_add_backward_cpu<T>(const T*, T*, std::int64_t, std::int64_t, T);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

}  // namespace convnet
