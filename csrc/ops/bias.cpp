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
    ops_detail::run_on_device(
        op, y, CONVNET_CPU(bias_add_forward_cpu<T>(y.data<T>(), b.data<T>(), y.dim(0), b.numel())),
        CONVNET_CUDA(
            bias_add_forward_cuda(y.data<float>(), b.data<float>(), y.dim(0), b.numel(), nullptr)));
}

void bias_add_backward(const Tensor& dy, const Tensor& db, float beta) {
    const char* op = "bias_add_backward";
    check(dy, db, op, "dy", "db");
    ops_detail::run_on_device(
        op, dy,
        CONVNET_CPU(
            bias_add_backward_cpu<T>(dy.data<T>(), db.data<T>(), dy.dim(0), db.numel(), T(beta))),
        CONVNET_CUDA(bias_add_backward_cuda(dy.data<float>(), db.data<float>(), dy.dim(0),
                                            db.numel(), beta, nullptr)));
}

}  // namespace convnet
