// Softmax and log-loss on the CPU, one row per iteration; the loss is summed in double.
#include "ops/softmax.h"

#include <algorithm>
#include <cmath>

namespace convnet {

namespace {
// probs = exp(x - max) / sum; returns max + log(sum) (the log-sum-exp of the row).
template <typename T>
T softmax_row(const T* x, T* probs, std::int64_t k) {
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
}  // namespace

template <typename T>
void softmax_forward_cpu(const T* x, T* probs, std::int64_t n, std::int64_t k) {
#pragma omp parallel for schedule(static) if (n * k > 65536)
    for (std::int64_t i = 0; i < n; ++i) softmax_row(x + i * k, probs + i * k, k);
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
    double loss = 0;
    std::int64_t top1 = 0, topk_err = 0;
#pragma omp parallel for schedule(static) reduction(+ : loss, top1, topk_err) if (n * k > 65536)
    for (std::int64_t i = 0; i < n; ++i) {
        const T* xi = x + i * k;
        T* pi = probs + i * k;
        const std::int32_t label = labels[i];
        const T lse = softmax_row(xi, pi, k);
        loss += double(lse) - double(xi[label]);
        // Classes strictly more probable than the label (compared on logits: same order).
        std::int64_t above = 0;
        for (std::int64_t j = 0; j < k; ++j) above += xi[j] > xi[label];
        top1 += above >= 1;
        topk_err += above >= topk;
        if (dx) {
            T* di = dx + i * k;
            for (std::int64_t j = 0; j < k; ++j) di[j] = pi[j];
            di[label] -= T(1);
        }
    }
    return {loss, top1, topk_err};
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
