// Pooling dispatch, output-size rule and geometry checks.
#include "ops/pool.h"

#include "ops/dispatch.h"
#include "ops/neuron.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

PoolMode pool_mode_from_name(const std::string& name) {
    if (name == "max") return PoolMode::max;
    if (name == "avg") return PoolMode::avg;
    throw ArgumentError("pool: mode must be 'max' or 'avg', got '" + name + "'");
}

std::int64_t pool_output_size(std::int64_t size, int window, int stride, int start,
                              std::int64_t outputs) {
    CONVNET_ARG_CHECK(window >= 1, "pool: size must be >= 1, got ", window);
    CONVNET_ARG_CHECK(stride >= 1, "pool: stride must be >= 1, got ", stride);
    CONVNET_ARG_CHECK(outputs >= 0, "pool: outputs must be >= 0, got ", outputs);
    if (outputs > 0) return outputs;
    const std::int64_t span = size - start - window;
    if (span <= 0) return 1;
    return (span + stride - 1) / stride + 1;
}

static void check_geometry(const Tensor& x, const Tensor& y, const PoolParams& p, const char* op) {
    expect(x, op, "x", x.dtype(), x.device(), 4);
    expect(y, op, "y", x.dtype(), x.device(), 4);
    CONVNET_ARG_CHECK(p.size_h >= 1 && p.size_w >= 1, op, ": size must be >= 1");
    CONVNET_ARG_CHECK(p.stride_h >= 1 && p.stride_w >= 1, op, ": stride must be >= 1");
    const std::int64_t oh = y.dim(2), ow = y.dim(3);
    expect_shape(y, op, "y", {x.dim(0), x.dim(1), oh, ow});
    auto axis_ok = [](std::int64_t size, int window, int stride, int start, std::int64_t outs) {
        // The first and last windows must each hold at least one in-image pixel.
        return outs >= 1 && start + window > 0 && start + (outs - 1) * stride < size;
    };
    CONVNET_ARG_CHECK(axis_ok(x.dim(2), p.size_h, p.stride_h, p.start_h, oh) &&
                          axis_ok(x.dim(3), p.size_w, p.stride_w, p.start_w, ow),
                      op, ": a pooling window of output ", oh, "x", ow, " (size ", p.size_h, "x",
                      p.size_w, ", stride ", p.stride_h, "x", p.stride_w, ", start ", p.start_h,
                      ",", p.start_w, ") lies entirely outside the ", x.dim(2), "x", x.dim(3),
                      " input");
}

// The winners buffer as int32 (it is a 4-byte-element tensor of y's shape), or null where it is
// not given, not a CPU tensor, or not max pooling.
static std::int32_t* winners_of(const Tensor& winners, const Tensor& y, const PoolParams& p,
                                const char* op) {
    const Device host = Device::cpu();
    if (!winners.defined() || y.device() != host || p.mode != PoolMode::max) return nullptr;
    CONVNET_ARG_CHECK(winners.device() == host && dtype_size(winners.dtype()) == 4 &&
                          winners.numel() == y.numel(),
                      op, ": winners must be a CPU tensor of ", y.numel(), " 4-byte elements");
    return static_cast<std::int32_t*>(winners.raw());
}

void pool_forward(const Tensor& x, const Tensor& y, const PoolParams& p, const Tensor& winners,
                  const NeuronParams* neuron) {
    const char* op = "pool_forward";
    check_geometry(x, y, p, op);
    std::int32_t* const won = winners_of(winners, y, p, op);
    const std::int64_t maps = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
    const std::int64_t oh = y.dim(2), ow = y.dim(3);
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(
            pool_forward_cpu<T>(x.data<T>(), y.data<T>(), maps, h, w, oh, ow, p, won, neuron)),
        CONVNET_CUDA({
            pool_forward_cuda(x.data<float>(), y.data<float>(), maps, h, w, oh, ow, p, nullptr);
            if (neuron) neuron_forward(y, y, *neuron);
        }));
}

void pool_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                   const PoolParams& p, float beta, const Tensor& winners,
                   const NeuronParams* x_neuron) {
    const char* op = "pool_backward";
    check_fused_neuron_gradient(x_neuron, beta, op);
    check_geometry(x, y, p, op);
    const std::int32_t* const won = winners_of(winners, y, p, op);
    expect(dy, op, "dy", x.dtype(), x.device());
    expect_shape(dy, op, "dy", y.shape());
    expect(dx, op, "dx", x.dtype(), x.device());
    expect_shape(dx, op, "dx", x.shape());
    const std::int64_t maps = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
    const std::int64_t oh = y.dim(2), ow = y.dim(3);
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(pool_backward_cpu<T>(x.data<T>(), y.data<T>(), dy.data<T>(), dx.data<T>(), maps,
                                         h, w, oh, ow, p, T(beta), won, x_neuron)),
        CONVNET_CUDA({
            pool_backward_cuda(x.data<float>(), y.data<float>(), dy.data<float>(),
                               dx.data<float>(), maps, h, w, oh, ow, p, beta, nullptr);
            if (x_neuron) neuron_backward(x, x, dx, dx, *x_neuron);
        }));
}

}  // namespace convnet
