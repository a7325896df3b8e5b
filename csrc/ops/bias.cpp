// bias_add dispatch.
#include "ops/bias.h"

#include "ops/dispatch.h"

namespace convnet {

namespace {
void check(const Tensor& y, const Tensor& b, const char* op, const char* y_name,
           const char* b_name) {
    ops_detail::expect(y, op, y_name, y.dtype(), y.device());
    ops_detail::expect(b, op, b_name, y.dtype(), y.device());
    Shape per_sample(y.shape().begin() + 1, y.shape().end());
    ops_detail::expect_shape(b, op, b_name, per_sample);
}
}  // namespace

void bias_add_forward(const Tensor& y, const Tensor& b) {
    const char* op = "bias_add_forward";
    check(y, b, op, "y", "b");
    if (y.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(y.dtype() == DType::f32, op, ": the GPU path takes float32");
        bias_add_forward_cuda(y.data<float>(), b.data<float>(), y.dim(0), b.numel(), nullptr);
        return;
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    ops_detail::with_float_type(y.dtype(), [&](auto tag) {
        using T = decltype(tag);
        bias_add_forward_cpu<T>(y.data<T>(), b.data<T>(), y.dim(0), b.numel());
    });
}

void bias_add_backward(const Tensor& dy, const Tensor& db, float beta) {
    const char* op = "bias_add_backward";
    check(dy, db, op, "dy", "db");
    if (dy.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(dy.dtype() == DType::f32, op, ": the GPU path takes float32");
        bias_add_backward_cuda(dy.data<float>(), db.data<float>(), dy.dim(0), db.numel(), beta,
                               nullptr);
        return;
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    ops_detail::with_float_type(dy.dtype(), [&](auto tag) {
        using T = decltype(tag);
        bias_add_backward_cpu<T>(dy.data<T>(), db.data<T>(), dy.dim(0), db.numel(), T(beta));
    });
}

}  // namespace convnet
