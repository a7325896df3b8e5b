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
    if (b.defined()) expect(b, op, "b", x.dtype(), x.device()), expect_shape(b, op, "b", {g.m});
    if (x.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(x.dtype() == DType::f32, op, ": the GPU path takes float32");
        const std::int64_t floats = fc_workspace_cuda(g);
        const Tensor workspace =
            floats > 0 ? Tensor::empty({floats}, DType::f32, x.device()) : Tensor();
        fc_forward_cuda(x.data<float>(), w.data<float>(), b.defined() ? b.data<float>() : nullptr,
                        y.data<float>(), g, current_math_precision(),
                        workspace.defined() ? workspace.data<float>() : nullptr, nullptr);
        return;
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    ops_detail::with_float_type(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        fc_forward_cpu<T>(x.data<T>(), w.data<T>(), b.defined() ? b.data<T>() : nullptr,
                          y.data<T>(), g);
    });
}

void fc_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                 const Tensor& dw, const Tensor& db, float beta) {
    const char* op = "fc_backward";
    const FcGeometry g = fc_geometry(x, w, op);
    expect(dy, op, "dy", x.dtype(), x.device());
    expect_shape(dy, op, "dy", {g.n, g.m});
    if (dx.defined()) expect(dx, op, "dx", x.dtype(), x.device()), expect_shape(dx, op, "dx", x.shape());
    if (dw.defined()) expect(dw, op, "dw", x.dtype(), x.device()), expect_shape(dw, op, "dw", w.shape());
    if (db.defined()) expect(db, op, "db", x.dtype(), x.device()), expect_shape(db, op, "db", {g.m});
    if (x.device().is_cuda()) {
#ifdef CONVNET_WITH_CUDA
        CONVNET_ARG_CHECK(x.dtype() == DType::f32, op, ": the GPU path takes float32");
        const std::int64_t floats = dx.defined() || dw.defined() ? fc_workspace_cuda(g) : 0;
        const Tensor workspace =
            floats > 0 ? Tensor::empty({floats}, DType::f32, x.device()) : Tensor();
        fc_backward_cuda(x.data<float>(), w.data<float>(), dy.data<float>(),
                         dx.defined() ? dx.data<float>() : nullptr,
                         dw.defined() ? dw.data<float>() : nullptr,
                         db.defined() ? db.data<float>() : nullptr, g, beta,
                         current_math_precision(),
                         workspace.defined() ? workspace.data<float>() : nullptr, nullptr);
        return;
#else
        ops_detail::no_cuda_kernel(op);
#endif
    }
    ops_detail::with_float_type(x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        fc_backward_cpu<T>(x.data<T>(), w.data<T>(), dy.data<T>(),
                           dx.defined() ? dx.data<T>() : nullptr,
                           dw.defined() ? dw.data<T>() : nullptr,
                           db.defined() ? db.data<T>() : nullptr, g, T(beta));
    });
}

}  // namespace convnet
