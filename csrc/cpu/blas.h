// The CPU path's matrix products: row-major GEMM through OpenBLAS (the scipy-openblas32 build,
// whose symbols carry the scipy_ prefix), for float and double. OpenBLAS always runs on one
// thread: the parallel work is ours (OpenMP), so no second thread pool spins on cores our threads
// need. A large GEMM called outside a parallel region is split across our threads here.
#pragma once

#include <cstdint>

#include "core/tensor.h"

namespace convnet::blas {

// C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, all row-major.
template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc);

// How many OpenMP threads a loop over `work_items` independent items should use.
int threads_for(std::int64_t work_items);

// A per-thread workspace: `threads` rows of at least `elements` each, every row on cache lines of
// its own (rows padded to whole lines plus one), so that threads writing their rows never share a
// line. Row t starts at data + t * dim(1).
Tensor thread_rows(int threads, std::int64_t elements, DType dtype = DType::f32);

}  // namespace convnet::blas
