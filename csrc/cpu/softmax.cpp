// Softmax and log-loss on the CPU, one row per iteration; the loss is summed in double.
#include "ops/softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/blas.h"
#include "cpu/vector_clones.h"
#include "cpu/vector_math.h"

namespace convnet {

namespace {
// Rows shorter than this take plain loops: for CIFAR's 10 classes the vector loops' set-up and
// remainders cost more than they save (128 x 10: 5 us a batch in plain loops, 12 in vector ones).
constexpr std::int64_t kVectorRow = 32;

// probs = exp(x - max) / sum; returns max + log(sum) (the log-sum-exp of the row). From
// kVectorRow classes the loops are `omp simd` (the sum in vector partial sums) and, where glibc's
// vector maths library is linked (CONVNET_HAVE_LIBMVEC, CMake), exp is its 16-wide AVX-512 or
// narrower version (vector_math.h): AlexNet's 32 x 1000 takes 16 us instead of 112.
template <typename T>
CONVNET_ALWAYS_INLINE T softmax_row(const T* x, T* probs, std::int64_t k) {
    if (k < kVectorRow) {
        const T max = *std::max_element(x, x + k);
        T sum = 0;
        for (std::int64_t j = 0; j < k; ++j) {
            probs[j] = std::exp(x[j] - max);
            sum += probs[j];
        }
        const T inv = T(1) / sum;
        for (std::int64_t j = 0; j < k; ++j) probs[j] *= inv;
        return max + std::log(sum);
    }
    T max = x[0];
#pragma omp simd reduction(max : max)
    for (std::int64_t j = 1; j < k; ++j) max = x[j] > max ? x[j] : max;
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (std::int64_t j = 0; j < k; ++j) {
        probs[j] = vector_math::exp(x[j] - max);
        sum += probs[j];
    }
    const T inv = T(1) / sum;
#pragma omp simd
    for (std::int64_t j = 0; j < k; ++j) probs[j] *= inv;
    return max + std::log(sum);
}

// Softmax and log-loss of row i (softmax_logloss_cpu): its loss, and the count of classes
// strictly more probable than the label (compared on logits: the same order).
template <typename T>
CONVNET_ALWAYS_INLINE double logloss_row(const T* xi, std::int32_t label, T* pi, T* di,
                                         std::int64_t k, std::int64_t* above_label) {
    const T lse = softmax_row(xi, pi, k);
    const T at_label = xi[label];
    std::int64_t above = 0;
#pragma omp simd reduction(+ : above)
    for (std::int64_t j = 0; j < k; ++j) above += xi[j] > at_label;
    *above_label = above;
    if (di) {
#pragma omp simd
        for (std::int64_t j = 0; j < k; ++j) di[j] = pi[j];
        di[label] -= T(1);
    }
    return double(lse) - double(at_label);
}

// Rows [r0, r1): softmax into probs and, with labels, the log-loss, its gradient (dx may be
// null) and the error counts summed into `sums`. One call per thread's rows: the clones
// (vector_clones.h) are picked once per call, not once per row.
template <typename T>
CONVNET_ALWAYS_INLINE void rows(const T* x, const std::int32_t* labels, T* probs, T* dx,
                                std::int64_t r0, std::int64_t r1, std::int64_t k, int topk,
                                LogLossResult* sums) {
    for (std::int64_t i = r0; i < r1; ++i) {
        if (!labels) {
            softmax_row(x + i * k, probs + i * k, k);
            continue;
        }
        std::int64_t above = 0;
        sums->loss += logloss_row(x + i * k, labels[i], probs + i * k, dx ? dx + i * k : nullptr,
                                  k, &above);
        sums->top1_errors += above >= 1;
        sums->topk_errors += above >= topk;
    }
}

CONVNET_VECTOR_CLONES void rows_f32(const float* x, const std::int32_t* labels, float* probs,
                                    float* dx, std::int64_t r0, std::int64_t r1, std::int64_t k,
                                    int topk, LogLossResult* sums) {
    rows(x, labels, probs, dx, r0, r1, k, topk, sums);
}
CONVNET_VECTOR_CLONES void rows_f64(const double* x, const std::int32_t* labels, double* probs,
                                    double* dx, std::int64_t r0, std::int64_t r1, std::int64_t k,
                                    int topk, LogLossResult* sums) {
    rows(x, labels, probs, dx, r0, r1, k, topk, sums);
}
void rows_any(const float* x, const std::int32_t* labels, float* probs, float* dx,
              std::int64_t r0, std::int64_t r1, std::int64_t k, int topk, LogLossResult* sums) {
    rows_f32(x, labels, probs, dx, r0, r1, k, topk, sums);
}
void rows_any(const double* x, const std::int32_t* labels, double* probs, double* dx,
              std::int64_t r0, std::int64_t r1, std::int64_t k, int topk, LogLossResult* sums) {
    rows_f64(x, labels, probs, dx, r0, r1, k, topk, sums);
}

// rows() over all n rows, in one contiguous share per thread above 64K elements; the shares'
// sums are added in thread order, so the result does not depend on timing.
template <typename T>
LogLossResult all_rows(const T* x, const std::int32_t* labels, T* probs, T* dx, std::int64_t n,
                       std::int64_t k, int topk) {
    const int threads = n * k > 65536 ? blas::threads_for(n) : 1;
    std::vector<LogLossResult> sums(std::size_t(threads), LogLossResult{0.0, 0, 0});
    blas::for_each_item(threads, threads, [&](std::int64_t t, int) {
        rows_any(x, labels, probs, dx, n * t / threads, n * (t + 1) / threads, k, topk,
                 &sums[std::size_t(t)]);
    });
    LogLossResult total{0.0, 0, 0};
    for (const LogLossResult& part : sums) {
        total.loss += part.loss;
        total.top1_errors += part.top1_errors;
        total.topk_errors += part.topk_errors;
    }
    return total;
}
}  // namespace

template <typename T>
void softmax_forward_cpu(const T* x, T* probs, std::int64_t n, std::int64_t k) {
    all_rows<T>(x, nullptr, probs, nullptr, n, k, 1);
}

// dx = y * (dy - sum_j dy_j y_j), row by row
template <typename T>
void softmax_backward_cpu(const T* probs, const T* dy, T* dx, std::int64_t n, std::int64_t k,
                          T beta) {
#pragma omp parallel for schedule(static) if (n * k > 65536)
    for (std::int64_t i = 0; i < n; ++i) {
        const T* y = probs + i * k;
        const T* g = dy + i * k;
        T dot = 0;
        for (std::int64_t j = 0; j < k; ++j) dot += g[j] * y[j];
        for (std::int64_t j = 0; j < k; ++j) {
            const T v = y[j] * (g[j] - dot);
            dx[i * k + j] = beta == T(0) ? v : beta * dx[i * k + j] + v;
        }
    }
}

template <typename T>
LogLossResult softmax_logloss_cpu(const T* x, const std::int32_t* labels, T* probs, T* dx,
                                  std::int64_t n, std::int64_t k, int topk) {
    return all_rows(x, labels, probs, dx, n, k, topk);
}

template <typename T>
LogLossResult logreg_cost_cpu(const T* probs, const std::int32_t* labels, T* dprobs,
                              std::int64_t n, std::int64_t k, double scale, int topk, T beta) {
    double loss = 0;
    std::int64_t top1 = 0, topk_err = 0;
    for (std::int64_t i = 0; i < n; ++i) {
        const T* pi = probs + i * k;
        const T p = pi[labels[i]];
        loss -= std::log(double(p));
        std::int64_t above = 0;
        for (std::int64_t j = 0; j < k; ++j) above += pi[j] > p;
        top1 += above >= 1;
        topk_err += above >= topk;
        if (dprobs) {
            T* di = dprobs + i * k;
            for (std::int64_t j = 0; j < k; ++j) {
                const T g = j == labels[i] ? T(-scale / double(p)) : T(0);
                di[j] = beta == T(0) ? g : beta * di[j] + g;
            }
        }
    }
    return {loss, top1, topk_err};
}

#define CONVNET_INSTANTIATE(T)                                                                   \
    template void softmax_forward_cpu<T>(const T*, T*, std::int64_t, std::int64_t);              \
    template void softmax_backward_cpu<T>(const T*, const T*, T*, std::int64_t, std::int64_t, T); \
    template LogLossResult softmax_logloss_cpu<T>(const T*, const std::int32_t*, T*, T*,        \
                                                  std::int64_t, std::int64_t, int);             \
    template LogLossResult logreg_cost_cpu<T>(const T*, const std::int32_t*, T*, std::int64_t,  \
                                              std::int64_t, double, int, T);
CONVNET_INSTANTIATE(float)
CONVNET_INSTANTIATE(double)
#undef CONVNET_INSTANTIATE

}  // namespace convnet
