// The CPU path's matrix products: row-major GEMM through OpenBLAS (the scipy-openblas32 build,
// whose symbols carry the scipy_ prefix), for float and double, and the thread-count guard that
// keeps OpenBLAS single-threaded inside our own OpenMP loops (nested thread pools starve
// each other).
#pragma once

#include <cstdint>

namespace convnet::blas {

// C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, all row-major.
template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc);

int num_threads();
void set_num_threads(int n);

// Sets OpenBLAS to one thread for its lifetime; construct it outside the parallel region.
class SingleThreadedScope {
public:
    SingleThreadedScope() : saved_(num_threads()) { set_num_threads(1); }
    ~SingleThreadedScope() { set_num_threads(saved_); }
    SingleThreadedScope(const SingleThreadedScope&) = delete;
    SingleThreadedScope& operator=(const SingleThreadedScope&) = delete;

private:
    int saved_;
};

// How many OpenMP threads a loop over `work_items` independent items should use.
int threads_for(std::int64_t work_items);

}  // namespace convnet::blas
