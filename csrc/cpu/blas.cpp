// GEMM wrappers over OpenBLAS's CBLAS interface.
#include "cpu/blas.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>

#include "core/check.h"

namespace convnet::blas {

static CBLAS_TRANSPOSE flag(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

static void check_dims(std::int64_t m, std::int64_t n, std::int64_t k) {
    // The 32-bit-integer OpenBLAS build takes int dimensions.
    constexpr std::int64_t kMax = 2147483647;
    CONVNET_CHECK(m <= kMax && n <= kMax && k <= kMax, "gemm dimensions exceed 32-bit BLAS limits");
}

namespace {

// OpenBLAS's own threads stay asleep: set once, before the first product.
void keep_openblas_single_threaded() {
    static const bool once = (scipy_openblas_set_num_threads(1), true);
    (void)once;
}

void blas_call(bool trans_a, bool trans_b, int m, int n, int k, float alpha, const float* a,
               int lda, const float* b, int ldb, float beta, float* c, int ldc) {
    scipy_cblas_sgemm(CblasRowMajor, flag(trans_a), flag(trans_b), m, n, k, alpha, a, lda, b, ldb,
                      beta, c, ldc);
}

void blas_call(bool trans_a, bool trans_b, int m, int n, int k, double alpha, const double* a,
               int lda, const double* b, int ldb, double beta, double* c, int ldc) {
    scipy_cblas_dgemm(CblasRowMajor, flag(trans_a), flag(trans_b), m, n, k, alpha, a, lda, b, ldb,
                      beta, c, ldc);
}

// Below this many flops a product runs on the calling thread: splitting costs more than it saves.
constexpr double kSplitFlops = 8e6;

}  // namespace

template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc) {
    if (m == 0 || n == 0) return;
    check_dims(m, n, k);
    keep_openblas_single_threaded();
    const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    if (threads <= 1 || 2.0 * double(m) * double(n) * double(k) < kSplitFlops) {
        blas_call(trans_a, trans_b, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb), beta,
                  c, int(ldc));
        return;
    }
    // Each thread computes a panel of C: rows when C is taller than wide, else columns, in
    // multiples of 16 so that the kernels' register tiles stay whole. A panel of C needs the
    // matching rows of op(A) (or columns of op(B)) and all of the other operand; every element
    // is summed over k in the same order as the unsplit product.
    const bool by_rows = m >= n;
    const std::int64_t extent = by_rows ? m : n;
    const std::int64_t panel = ((extent + threads - 1) / threads + 15) / 16 * 16;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int t = 0; t < threads; ++t) {
        const std::int64_t begin = std::min(extent, t * panel);
        const std::int64_t count = std::min(extent, begin + panel) - begin;
        if (count <= 0) continue;
        if (by_rows)
            blas_call(trans_a, trans_b, int(count), int(n), int(k), alpha,
                      trans_a ? a + begin : a + begin * lda, int(lda), b, int(ldb), beta,
                      c + begin * ldc, int(ldc));
        else
            blas_call(trans_a, trans_b, int(m), int(count), int(k), alpha, a, int(lda),
                      trans_b ? b + begin * ldb : b + begin, int(ldb), beta, c + begin, int(ldc));
    }
}

template void gemm<float>(bool, bool, std::int64_t, std::int64_t, std::int64_t, float,
                          const float*, std::int64_t, const float*, std::int64_t, float, float*,
                          std::int64_t);
template void gemm<double>(bool, bool, std::int64_t, std::int64_t, std::int64_t, double,
                           const double*, std::int64_t, const double*, std::int64_t, double,
                           double*, std::int64_t);

int threads_for(std::int64_t work_items) {
    return static_cast<int>(std::max<std::int64_t>(
        1, std::min<std::int64_t>(work_items, omp_get_max_threads())));
}

Tensor thread_rows(int threads, std::int64_t elements, DType dtype) {
    constexpr std::int64_t kLine = 64;  // bytes; the allocator aligns to it
    const std::int64_t per_line = kLine / std::int64_t(dtype_size(dtype));
    const std::int64_t row = (std::max<std::int64_t>(elements, 1) + per_line - 1) / per_line * per_line;
    return Tensor::empty({threads, threads > 1 ? row + per_line : row}, dtype);
}

}  // namespace convnet::blas

namespace convnet {

int get_num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
    CONVNET_ARG_CHECK(n >= 1, "set_num_threads: n must be >= 1, got ", n);
    omp_set_num_threads(n);  // OpenBLAS stays on one thread (blas.h)
}

}  // namespace convnet
