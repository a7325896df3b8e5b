// The CPU path's matrix products: row-major GEMM through OpenBLAS (the scipy-openblas32 build,
// whose symbols carry the scipy_ prefix), for float and double. OpenBLAS always runs on one
// thread: the parallel work is ours (OpenMP), so no second thread pool spins on cores our threads
// need. A large GEMM called outside a parallel region is split across our threads here.
#pragma once

#include <omp.h>

#include <cstdint>

#include "core/tensor.h"

namespace convnet::blas {

// C (m x n) = alpha * op(A) (m x k) * op(B) (k x n) + beta * C, all row-major.
template <typename T>
void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, T alpha,
          const T* a, std::int64_t lda, const T* b, std::int64_t ldb, T beta, T* c,
          std::int64_t ldc);

// x = beta * x over n elements: the start of a gradient that is then added into (the ops'
// `beta` accumulation). beta 0 writes zeros (whatever x held, NaN included); beta 1 leaves x.
template <typename T>
void scale_for_accumulation(T* x, std::int64_t n, T beta) {
    if (beta == T(0))
        for (std::int64_t i = 0; i < n; ++i) x[i] = T(0);
    else if (beta != T(1))
        for (std::int64_t i = 0; i < n; ++i) x[i] *= beta;
}

// How many OpenMP threads a loop over `work_items` independent items should use.
int threads_for(std::int64_t work_items);

// Runs body(item, thread) for items 0..count-1 on `threads` OpenMP threads. Static scheduling
// fixes which thread takes which items, so per-thread partial sums are the same from run to run.
template <typename Body>
void for_each_item(std::int64_t count, int threads, Body&& body) {
    if (threads <= 1) {
        for (std::int64_t i = 0; i < count; ++i) body(i, 0);
        return;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (std::int64_t i = 0; i < count; ++i) body(i, omp_get_thread_num());
}

// A per-thread workspace: `threads` rows of at least `elements` each, every row on cache lines of
// its own (rows padded to whole lines plus one), so that threads writing their rows never share a
// line. Row t starts at data + t * dim(1).
Tensor thread_rows(int threads, std::int64_t elements, DType dtype = DType::f32);

}  // namespace convnet::blas
