// Softmax / log-loss dispatch.
#include "ops/softmax.h"

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

static void check_labels(const std::int32_t* labels, std::int64_t n, std::int64_t k,
                         const char* op) {
    for (std::int64_t i = 0; i < n; ++i)
        CONVNET_ARG_CHECK(labels[i] >= 0 && labels[i] < k, op, ": label ", labels[i], " of sample ",
                          i, " is outside [0, ", k, ")");
}

// Device scratch for the loss launchers (labels, per-row results, totals). The launchers
// synchronise before returning, so the block can go back to the cache when this tensor dies.
[[maybe_unused]] static Tensor workspace_for(std::int64_t n, Device device) {
    return ops_detail::gpu_workspace(std::int64_t((logloss_workspace_bytes(n) + 3) / 4), device);
}

void softmax_forward(const Tensor& x, const Tensor& probs) {
    const char* op = "softmax_forward";
    expect(x, op, "x", x.dtype(), x.device(), 2);
    expect(probs, op, "probs", x.dtype(), x.device());
    expect_shape(probs, op, "probs", x.shape());
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(softmax_forward_cpu<T>(x.data<T>(), probs.data<T>(), x.dim(0), x.dim(1))),
        CONVNET_CUDA(softmax_forward_cuda(x.data<float>(), probs.data<float>(), x.dim(0), x.dim(1),
                                          nullptr)));
}

void softmax_backward(const Tensor& probs, const Tensor& dy, const Tensor& dx, float beta) {
    const char* op = "softmax_backward";
    expect(probs, op, "y", probs.dtype(), probs.device(), 2);
    ops_detail::expect_like(probs, op, {{&dy, "dy"}, {&dx, "dx"}});
    ops_detail::run_on_device(
        op, probs,
        CONVNET_CPU(softmax_backward_cpu<T>(probs.data<T>(), dy.data<T>(), dx.data<T>(),
                                            probs.dim(0), probs.dim(1), T(beta))),
        CONVNET_CUDA(softmax_backward_cuda(probs.data<float>(), dy.data<float>(), dx.data<float>(),
                                           probs.dim(0), probs.dim(1), beta, nullptr)));
}

LogLossResult softmax_logloss(const Tensor& x, const std::int32_t* labels, const Tensor& probs,
                              const Tensor& dx, int topk) {
    const char* op = "softmax_logloss";
    expect(x, op, "x", x.dtype(), x.device(), 2);
    expect(probs, op, "probs", x.dtype(), x.device());
    expect_shape(probs, op, "probs", x.shape());
    if (dx.defined())
        expect(dx, op, "dx", x.dtype(), x.device()), expect_shape(dx, op, "dx", x.shape());
    CONVNET_ARG_CHECK(topk >= 1, op, ": topk must be >= 1, got ", topk);
    const std::int64_t n = x.dim(0), k = x.dim(1);
    check_labels(labels, n, k, op);
    return ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(return softmax_logloss_cpu<T>(x.data<T>(), labels, probs.data<T>(),
                                                  dx.data<T>(), n, k, topk)),
        CONVNET_CUDA({
            const Tensor workspace = workspace_for(n, x.device());
            return softmax_logloss_cuda(x.data<float>(), labels, probs.data<float>(),
                                        dx.data<float>(), n, k, topk, workspace.raw(), nullptr);
        }));
}

LogLossResult logreg_cost(const Tensor& probs, const std::int32_t* labels, const Tensor& dprobs,
                          double scale, int topk, float beta) {
    const char* op = "logreg_cost";
    expect(probs, op, "probs", probs.dtype(), probs.device(), 2);
    if (dprobs.defined()) ops_detail::expect_like(probs, op, {{&dprobs, "dprobs"}});
    CONVNET_ARG_CHECK(topk >= 1, op, ": topk must be >= 1, got ", topk);
    const std::int64_t n = probs.dim(0), k = probs.dim(1);
    check_labels(labels, n, k, op);
    return ops_detail::run_on_device(
        op, probs,
        CONVNET_CPU(return logreg_cost_cpu<T>(probs.data<T>(), labels, dprobs.data<T>(), n, k,
                                              scale, topk, T(beta))),
        CONVNET_CUDA({
            const Tensor workspace = workspace_for(n, probs.device());
            return logreg_cost_cuda(probs.data<float>(), labels, dprobs.data<float>(), n, k, scale,
                                    topk, beta, workspace.raw(), nullptr);
        }));
}

}  // namespace convnet
