// Convolution dispatch: output-size rules, geometry checks, CPU or CUDA.
#include "ops/conv.h"

#include "ops/dispatch.h"
#include "ops/neuron.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

ConvSizeRule conv_size_rule_from_name(const std::string& name) {
    if (name == "floor") return ConvSizeRule::floor;
    if (name == "cuda-convnet") return ConvSizeRule::cuda_convnet;
    throw ArgumentError("conv: rule must be 'floor' or 'cuda-convnet', got '" + name + "'");
}

std::int64_t conv_output_size(std::int64_t size, std::int64_t kernel, int stride, int padding,
                              ConvSizeRule rule) {
    CONVNET_ARG_CHECK(stride >= 1, "conv: stride must be >= 1, got ", stride);
    CONVNET_ARG_CHECK(padding >= 0, "conv: padding must be >= 0, got ", padding);
    CONVNET_ARG_CHECK(kernel >= 1, "conv: kernel size must be >= 1, got ", kernel);
    const std::int64_t span = size + 2 * std::int64_t(padding) - kernel;
    CONVNET_ARG_CHECK(span >= 0, "conv: kernel ", kernel, " does not fit an input of ", size,
                      " with padding ", padding);
    if (rule == ConvSizeRule::floor) return span / stride + 1;
    return 1 + (span + stride - 1) / stride;  // 1 + ceil(span / stride)
}

ConvGeometry conv_geometry(const Tensor& x, const Tensor& w, const Tensor& y, int stride_h,
                           int stride_w, int pad_h, int pad_w, int groups, const char* op) {
    expect(x, op, "x", x.dtype(), x.device(), 4);
    expect(w, op, "w", x.dtype(), x.device(), 4);
    expect(y, op, "y", x.dtype(), x.device(), 4);
    ConvGeometry g;
    g.n = x.dim(0), g.c = x.dim(1), g.h = x.dim(2), g.w = x.dim(3);
    g.f = w.dim(0), g.kh = w.dim(2), g.kw = w.dim(3);
    g.oh = y.dim(2), g.ow = y.dim(3);
    g.stride_h = stride_h, g.stride_w = stride_w, g.pad_h = pad_h, g.pad_w = pad_w;
    g.groups = groups;
    CONVNET_ARG_CHECK(groups >= 1 && g.c % groups == 0 && g.f % groups == 0, op, ": groups (",
                      groups, ") must divide the input channels (", g.c, ") and filters (", g.f,
                      ")");
    CONVNET_ARG_CHECK(stride_h >= 1 && stride_w >= 1, op, ": stride must be >= 1");
    CONVNET_ARG_CHECK(pad_h >= 0 && pad_w >= 0, op, ": padding must be >= 0");
    CONVNET_ARG_CHECK(w.dim(1) == g.c / groups, op, ": w must have C/groups = ", g.c / groups,
                      " channels, got shape ", shape_str(w.shape()));
    expect_shape(y, op, "y", {g.n, g.f, g.oh, g.ow});
    // Windows may overhang, or lie wholly beyond, the far side under cuda-convnet's rule: the
    // pixels they miss read as zero (im2col clips every row to the image).
    CONVNET_ARG_CHECK(g.oh >= 1 && g.ow >= 1, op, ": empty output ", g.oh, "x", g.ow);
    return g;
}

void conv_forward(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                  const ConvGeometry& g, const NeuronParams* neuron,
                  const ImageHook* after_image) {
    const char* op = "conv_forward";
    if (b.defined()) {
        expect(b, op, "b", x.dtype(), x.device(), 1);
        expect_shape(b, op, "b", {g.f});
    }
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(conv_forward_cpu<T>(x.data<T>(), w.data<T>(), b.data<T>(), y.data<T>(), g,
                                        neuron, after_image)),
        CONVNET_CUDA({
            conv_forward_cuda(x.data<float>(), w.data<float>(), b.data<float>(), y.data<float>(),
                              g, current_math_precision(), nullptr);
            if (neuron) neuron_forward(y, y, *neuron);
            if (after_image)
                for (std::int64_t n = 0; n < g.n; ++n) (*after_image)(n);
        }));
}

void conv_backward(const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                   const Tensor& dw, const Tensor& db, const ConvGeometry& g, float beta,
                   const NeuronParams* x_neuron) {
    const char* op = "conv_backward";
    expect(dy, op, "dy", x.dtype(), x.device(), 4);
    expect_shape(dy, op, "dy", {g.n, g.f, g.oh, g.ow});
    ops_detail::expect_if_given(dx, op, "dx", x, x.shape());
    ops_detail::expect_if_given(dw, op, "dw", x, w.shape());
    ops_detail::expect_if_given(db, op, "db", x, {g.f});
    const bool filter_grads = dw.defined() || db.defined();
    check_fused_neuron_gradient(x_neuron, beta, op);
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU({
            if (dx.defined())
                conv_backward_data_cpu<T>(w.data<T>(), dy.data<T>(), dx.data<T>(), g, T(beta),
                                          x.data<T>(), x_neuron);
            if (filter_grads)
                conv_backward_filter_cpu<T>(x.data<T>(), dy.data<T>(), dw.data<T>(), db.data<T>(),
                                            g, T(beta));
        }),
        CONVNET_CUDA({
            const MathPrecision precision = current_math_precision();
            if (dx.defined()) {
                conv_backward_data_cuda(w.data<float>(), dy.data<float>(), dx.data<float>(), g,
                                        beta, precision, nullptr);
                if (x_neuron) neuron_backward(x, x, dx, dx, *x_neuron);
            }
            if (filter_grads) {
                const Tensor workspace = ops_detail::gpu_workspace(
                    dw.defined() ? conv_backward_filter_workspace_cuda(g) : 0, x.device());
                conv_backward_filter_cuda(x.data<float>(), dy.data<float>(), dw.data<float>(),
                                          db.data<float>(), g, beta, workspace.data<float>(),
                                          precision, nullptr);
            }
        }));
}

}  // namespace convnet
