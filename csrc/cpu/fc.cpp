// Fully connected on the CPU: three GEMMs through OpenBLAS (using its own threads).
#include "ops/fc.h"

#include <vector>

#include "cpu/blas.h"

namespace convnet {

template <typename T>
void fc_forward_cpu(const T* x, const T* w, const T* b, T* y, const FcGeometry& g) {
    if (b)
        for (std::int64_t n = 0; n < g.n; ++n)
            for (std::int64_t m = 0; m < g.m; ++m) y[n * g.m + m] = b[m];
    // y (N, M) = x (N, K) * w^T (K, M) [+ y holding the bias]
    blas::gemm<T>(false, true, g.n, g.m, g.k, T(1), x, g.k, w, g.k, b ? T(1) : T(0), y, g.m);
}

template <typename T>
void fc_backward_cpu(const T* x, const T* w, const T* dy, T* dx, T* dw, T* db,
                     const FcGeometry& g, T beta) {
    // dx (N, K) = dy (N, M) * w (M, K)
    if (dx) blas::gemm<T>(false, false, g.n, g.k, g.m, T(1), dy, g.m, w, g.k, beta, dx, g.k);
    // dw (M, K) = dy^T (M, N) * x (N, K)
    if (dw) blas::gemm<T>(true, false, g.m, g.k, g.n, T(1), dy, g.m, x, g.k, beta, dw, g.k);
    if (db) {
        // Row by row, so the reads of dy stay contiguous.
        std::vector<T> sum(g.m, T(0));
        for (std::int64_t n = 0; n < g.n; ++n)
            for (std::int64_t m = 0; m < g.m; ++m) sum[m] += dy[n * g.m + m];
        for (std::int64_t m = 0; m < g.m; ++m) db[m] = beta == T(0) ? sum[m] : beta * db[m] + sum[m];
    }
}

template void fc_forward_cpu<float>(const float*, const float*, const float*, float*,
                                    const FcGeometry&);
template void fc_forward_cpu<double>(const double*, const double*, const double*, double*,
                                     const FcGeometry&);
template void fc_backward_cpu<float>(const float*, const float*, const float*, float*, float*,
                                     float*, const FcGeometry&, float);
template void fc_backward_cpu<double>(const double*, const double*, const double*, double*,
                                      double*, double*, const FcGeometry&, double);

}  // namespace convnet
