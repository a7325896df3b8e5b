// Softmax / log-loss dispatch.
#include "ops/softmax.h"

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

// Device scratch for the loss launchers (labels, per-row results, totals), from the caching
// allocator, so it costs no cudaMalloc after the first step. The launchers synchronise before
// returning, so the block can go back to the cache when this tensor dies.
static Tensor workspace_for(std::int64_t n, Device device) {
    const std::int64_t floats = std::int64_t((logloss_workspace_bytes(n) + 3) / 4);
    return Tensor::empty({floats}, DType::f32, device);
}

void softmax_forward(const Tensor& x, const Tensor& probs) {
    const char* op = "softmax_forward";
    expect(x, op, "x", x.dtype(), x.device(), 2);
    expect(probs, op, "probs", x.dtype(), x.device());
    expect_shape(probs, op, "probs", x.shape());
    if (x.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(x.dtype() == DType::f32, op, ": the GPU path takes float32");
        softmax_forward_cuda(x.data<float>(), probs.data<float>(), x.dim(0), x.dim(1), nullptr);
        return;
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    ops_detail::with_float_type(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        softmax_forward_cpu<T>(x.data<T>(), probs.data<T>(), x.dim(0), x.dim(1));
    });
}

void softmax_backward(const Tensor& probs, const Tensor& dy, const Tensor& dx, float beta) {
    const char* op = "softmax_backward";
    expect(probs, op, "y", probs.dtype(), probs.device(), 2);
    ops_detail::expect_like(probs, op, {{&dy, "dy"}, {&dx, "dx"}});
    if (probs.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(probs.dtype() == DType::f32, op, ": the GPU path takes float32");
        softmax_backward_cuda(probs.data<float>(), dy.data<float>(), dx.data<float>(),
                              probs.dim(0), probs.dim(1), beta, nullptr);
        return;
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    ops_detail::with_float_type(probs.dtype(), [&](auto tag) {
        using T = decltype(tag);
        softmax_backward_cpu<T>(probs.data<T>(), dy.data<T>(), dx.data<T>(), probs.dim(0),
                                probs.dim(1), T(beta));
    });
}

LogLossResult softmax_logloss(const Tensor& x, const std::int32_t* labels, const Tensor& probs,
                              const Tensor& dx, int topk) {
    const char* op = "softmax_logloss";
    expect(x, op, "x", x.dtype(), x.device(), 2);
    expect(probs, op, "probs", x.dtype(), x.device());
    expect_shape(probs, op, "probs", x.shape());
    if (dx.defined()) expect(dx, op, "dx", x.dtype(), x.device()), expect_shape(dx, op, "dx", x.shape());
    CONVNET_ARG_CHECK(topk >= 1, op, ": topk must be >= 1, got ", topk);
    const std::int64_t n = x.dim(0), k = x.dim(1);
    for (std::int64_t i = 0; i < n; ++i)
        CONVNET_ARG_CHECK(labels[i] >= 0 && labels[i] < k, op, ": label ", labels[i], " of sample ",
                          i, " is outside [0, ", k, ")");
    if (x.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(x.dtype() == DType::f32, op, ": the GPU path takes float32");
        const Tensor workspace = workspace_for(n, x.device());
        return softmax_logloss_cuda(x.data<float>(), labels, probs.data<float>(),
                                    dx.defined() ? dx.data<float>() : nullptr, n, k, topk,
                                    workspace.raw(), nullptr);
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    LogLossResult result;
    ops_detail::with_float_type(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        result = softmax_logloss_cpu<T>(x.data<T>(), labels, probs.data<T>(),
                                        dx.defined() ? dx.data<T>() : nullptr, n, k, topk);
    });
    return result;
}

LogLossResult logreg_cost(const Tensor& probs, const std::int32_t* labels, const Tensor& dprobs,
                          double scale, int topk, float beta) {
    const char* op = "logreg_cost";
    expect(probs, op, "probs", probs.dtype(), probs.device(), 2);
    if (dprobs.defined()) ops_detail::expect_like(probs, op, {{&dprobs, "dprobs"}});
    CONVNET_ARG_CHECK(topk >= 1, op, ": topk must be >= 1, got ", topk);
    const std::int64_t n = probs.dim(0), k = probs.dim(1);
    for (std::int64_t i = 0; i < n; ++i)
        CONVNET_ARG_CHECK(labels[i] >= 0 && labels[i] < k, op, ": label ", labels[i], " of sample ",
                          i, " is outside [0, ", k, ")");
    if (probs.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(probs.dtype() == DType::f32, op, ": the GPU path takes float32");
        const Tensor workspace = workspace_for(n, probs.device());
        return logreg_cost_cuda(probs.data<float>(), labels,
                                dprobs.defined() ? dprobs.data<float>() : nullptr, n, k, scale,
                                topk, beta, workspace.raw(), nullptr);
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    LogLossResult result;
    ops_detail::with_float_type(probs.dtype(), [&](auto tag) {
        using T = decltype(tag);
        result = logreg_cost_cpu<T>(probs.data<T>(), labels,
                                    dprobs.defined() ? dprobs.data<T>() : nullptr, n, k, scale,
                                    topk, T(beta));
    });
    return result;
}

}  // namespace convnet
