// Softmax over the last axis and the multinomial log-loss (cuda-convnet's softmax + cost.logreg).
// Layout: x, probs, dx are (N, K) row-major; labels are (N,) int32 class indices.
// softmax_logloss computes, in one pass: probs, the summed loss sum_n -log probs[n, label[n]]
// (from the log-sum-exp, so it stays finite when a probability underflows), dx = probs -
// onehot(labels) (the gradient of that sum), and the top-1 / top-k error counts. A sample is
// correct at k when fewer than k classes are strictly more probable than its label.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/tensor.h"

namespace convnet {

struct LogLossResult {
    double loss = 0.0;
    std::int64_t top1_errors = 0;
    std::int64_t topk_errors = 0;
};

void softmax_forward(const Tensor& x, const Tensor& probs);
void softmax_backward(const Tensor& probs, const Tensor& dy, const Tensor& dx, float beta = 0.f);
// dx may be undefined (evaluation only).
LogLossResult softmax_logloss(const Tensor& x, const std::int32_t* labels, const Tensor& probs,
                              const Tensor& dx, int topk);

// cuda-convnet's cost.logreg on probabilities (the output of a softmax layer): the loss and error
// counts as above, and, when dprobs is defined, dprobs = beta*dprobs + d(scale * loss)/dprobs,
// i.e. -scale / probs[n, label] at each label and 0 elsewhere.
LogLossResult logreg_cost(const Tensor& probs, const std::int32_t* labels, const Tensor& dprobs,
                          double scale, int topk, float beta = 0.f);

template <typename T>
void softmax_forward_cpu(const T* x, T* probs, std::int64_t n, std::int64_t k);
template <typename T>
void softmax_backward_cpu(const T* probs, const T* dy, T* dx, std::int64_t n, std::int64_t k,
                          T beta);
template <typename T>
LogLossResult softmax_logloss_cpu(const T* x, const std::int32_t* labels, T* probs, T* dx,
                                  std::int64_t n, std::int64_t k, int topk);

template <typename T>
LogLossResult logreg_cost_cpu(const T* probs, const std::int32_t* labels, T* dprobs,
                              std::int64_t n, std::int64_t k, double scale, int topk, T beta);

// CUDA launchers (kernels/softmax.cu), float32 device pointers. labels stay in host memory (as
// above); the two loss launchers copy them into `workspace` (device memory of at least
// logloss_workspace_bytes(n) bytes), reduce on the device and synchronise `stream` to return
// the totals. dx / dprobs may be null.
void softmax_forward_cuda(const float* x, float* probs, std::int64_t n, std::int64_t k,
                          void* stream);
void softmax_backward_cuda(const float* probs, const float* dy, float* dx, std::int64_t n,
                           std::int64_t k, float beta, void* stream);
std::size_t logloss_workspace_bytes(std::int64_t n);
LogLossResult softmax_logloss_cuda(const float* x, const std::int32_t* labels, float* probs,
                                   float* dx, std::int64_t n, std::int64_t k, int topk,
                                   void* workspace, void* stream);
LogLossResult logreg_cost_cuda(const float* probs, const std::int32_t* labels, float* dprobs,
                               std::int64_t n, std::int64_t k, double scale, int topk,
                               float beta, void* workspace, void* stream);

}  // namespace convnet
