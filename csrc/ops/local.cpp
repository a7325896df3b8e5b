// Locally connected layer dispatch.
#include "ops/local.h"

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

ConvGeometry local_geometry(const Tensor& x, const Tensor& w, const Tensor& y, int stride_h,
                            int stride_w, int pad_h, int pad_w, int groups, const char* op) {
    expect(w, op, "w", x.dtype(), x.device(), 6);
    // The conv checks apply to the filter bank of one position (a view of the first).
    const Tensor bank =
        Tensor::borrow(w.raw(), {w.dim(2), w.dim(3), w.dim(4), w.dim(5)}, w.dtype(), w.device());
    ConvGeometry g = conv_geometry(x, bank, y, stride_h, stride_w, pad_h, pad_w, groups, op);
    CONVNET_ARG_CHECK(w.dim(0) == g.oh && w.dim(1) == g.ow, op,
                      ": w must hold one filter bank "
                      "per output position, (",
                      g.oh, ", ", g.ow, ", ...), got ", shape_str(w.shape()));
    return g;
}

void local_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                   const ConvGeometry& g) {
    const char* op = "local_forward";
    ops_detail::expect_if_given(b, op, "b", x, {g.f, g.oh, g.ow});
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(local_forward_cpu<T>(x.data<T>(), w.data<T>(), b.data<T>(), y.data<T>(), g)),
        CONVNET_CUDA(local_forward_cuda(x.data<float>(), w.data<float>(), b.data<float>(),
                                        y.data<float>(), g, nullptr)));
}

void local_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                    const Tensor& dw, const Tensor& db, const ConvGeometry& g, float beta) {
    const char* op = "local_backward";
    expect(dy, op, "dy", x.dtype(), x.device(), 4);
    expect_shape(dy, op, "dy", {g.n, g.f, g.oh, g.ow});
    ops_detail::expect_if_given(dx, op, "dx", x, x.shape());
    ops_detail::expect_if_given(dw, op, "dw", x, w.shape());
    ops_detail::expect_if_given(db, op, "db", x, {g.f, g.oh, g.ow});
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(local_backward_cpu<T>(x.data<T>(), w.data<T>(), dy.data<T>(), dx.data<T>(),
                                          dw.data<T>(), db.data<T>(), g, T(beta))),
        CONVNET_CUDA(local_backward_cuda(x.data<float>(), w.data<float>(), dy.data<float>(),
                                         dx.data<float>(), dw.data<float>(), db.data<float>(), g,
                                         beta, nullptr)));
}

}  // namespace convnet
