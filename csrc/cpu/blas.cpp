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

template <>
void gemm<float>(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                 float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                 float beta, float* c, std::int64_t ldc) {
    if (m == 0 || n == 0) return;
    check_dims(m, n, k);
    scipy_cblas_sgemm(CblasRowMajor, flag(trans_a), flag(trans_b), int(m), int(n), int(k), alpha, a,
                      int(lda), b, int(ldb), beta, c, int(ldc));
}

template <>
void gemm<double>(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                  double alpha, const double* a, std::int64_t lda, const double* b,
                  std::int64_t ldb, double beta, double* c, std::int64_t ldc) {
    if (m == 0 || n == 0) return;
    check_dims(m, n, k);
    scipy_cblas_dgemm(CblasRowMajor, flag(trans_a), flag(trans_b), int(m), int(n), int(k), alpha, a,
                      int(lda), b, int(ldb), beta, c, int(ldc));
}

int num_threads() { return scipy_openblas_get_num_threads(); }
void set_num_threads(int n) { scipy_openblas_set_num_threads(n); }

int threads_for(std::int64_t work_items) {
    return static_cast<int>(std::max<std::int64_t>(
        1, std::min<std::int64_t>(work_items, omp_get_max_threads())));
}

}  // namespace convnet::blas

namespace convnet {

int get_num_threads() { return omp_get_max_threads(); }

void set_num_threads(int n) {
    CONVNET_ARG_CHECK(n >= 1, "set_num_threads: n must be >= 1, got ", n);
    omp_set_num_threads(n);
    blas::set_num_threads(n);
}

}  // namespace convnet
