// Fully connected dispatch.
#include "ops/fc.h"

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

FcGeometry fc_geometry(const Tensor& x, const Tensor& w, const char* op) {
    expect(x, op, "x", x.dtype(), x.device());
    expect(w, op, "w", x.dtype(), x.device(), 2);
    CONVNET_ARG_CHECK(x.ndim() >= 1, op, ": x must have a batch dimension");
    FcGeometry g;
    g.n = x.dim(0);
    g.k = g.n ? x.numel() / g.n : 0;
    g.m = w.dim(0);
    CONVNET_ARG_CHECK(w.dim(1) == g.k, op, ": w must have shape (outputs, ", g.k,
                      ") for inputs of ", g.k, " values, got ", shape_str(w.shape()));
    return g;
}

void fc_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y) {
    const char* op = "fc_forward";
    const FcGeometry g = fc_geometry(x, w, op);
    expect(y, op, "y", x.dtype(), x.device());
    expect_shape(y, op, "y", {g.n, g.m});
    ops_detail::expect_if_given(b, op, "b", x, {g.m});
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(fc_forward_cpu<T>(x.data<T>(), w.data<T>(), b.data<T>(), y.data<T>(), g)),
        CONVNET_CUDA({
            const Tensor workspace = ops_detail::gpu_workspace(fc_workspace_cuda(g), x.device());
            fc_forward_cuda(x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>(), g,
                            current_math_precision(), workspace.data<float>(), nullptr);
        }));
}

void fc_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                 const Tensor& dw, const Tensor& db, float beta) {
    const char* op = "fc_backward";
    const FcGeometry g = fc_geometry(x, w, op);
    expect(dy, op, "dy", x.dtype(), x.device());
    expect_shape(dy, op, "dy", {g.n, g.m});
    ops_detail::expect_if_given(dx, op, "dx", x, x.shape());
    ops_detail::expect_if_given(dw, op, "dw", x, w.shape());
    ops_detail::expect_if_given(db, op, "db", x, {g.m});
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(fc_backward_cpu<T>(x.data<T>(), w.data<T>(), dy.data<T>(), dx.data<T>(),
                                       dw.data<T>(), db.data<T>(), g, T(beta))),
        CONVNET_CUDA({
            const Tensor workspace = ops_detail::gpu_workspace(
                dx.defined() || dw.defined() ? fc_workspace_cuda(g) : 0, x.device());
            fc_backward_cuda(x.data<float>(), w.data<float>(), dy.data<float>(), dx.data<float>(),
                             dw.data<float>(), db.data<float>(), g, beta, current_math_precision(),
                             workspace.data<float>(), nullptr);
        }));
}

}  // namespace convnet
