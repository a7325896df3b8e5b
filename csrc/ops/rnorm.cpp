// Within-map normalisation dispatch (rnorm, cnorm).
#include "ops/rnorm.h"

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;

static void check_params(const RnormParams& p, const char* op) {
    CONVNET_ARG_CHECK(p.size >= 1, op, ": size must be >= 1, got ", p.size);
    CONVNET_ARG_CHECK(p.pre >= 0 && p.pre < p.size, op, ": window offset out of range");
    CONVNET_ARG_CHECK(p.k > 0 || p.alpha > 0, op, ": k and alpha cannot both be <= 0");
}

namespace {
template <typename ForwardCpu, typename ForwardCuda>
void forward(const Tensor& x, const Tensor& y, const RnormParams& p, const char* op,
             ForwardCpu&& cpu, [[maybe_unused]] ForwardCuda&& cuda) {
    check_params(p, op);
    expect(x, op, "x", x.dtype(), x.device(), 4);
    ops_detail::expect_like(x, op, {{&y, "y"}});
    const std::int64_t maps = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
    ops_detail::run_on_device(
        op, x, CONVNET_CPU(cpu(x.data<T>(), y.data<T>(), maps, h, w, p)),
        CONVNET_CUDA(cuda(x.data<float>(), y.data<float>(), maps, h, w, p, nullptr)));
}

template <typename BackwardCpu, typename BackwardCuda>
void backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
              const RnormParams& p, float beta, const char* op, BackwardCpu&& cpu,
              [[maybe_unused]] BackwardCuda&& cuda) {
    check_params(p, op);
    expect(x, op, "x", x.dtype(), x.device(), 4);
    ops_detail::expect_like(x, op, {{&y, "y"}, {&dy, "dy"}, {&dx, "dx"}});
    const std::int64_t maps = x.dim(0) * x.dim(1), h = x.dim(2), w = x.dim(3);
    ops_detail::run_on_device(op, x,
                              CONVNET_CPU(cpu(x.data<T>(), y.data<T>(), dy.data<T>(), dx.data<T>(),
                                              maps, h, w, p, T(beta))),
                              CONVNET_CUDA(cuda(x.data<float>(), y.data<float>(), dy.data<float>(),
                                                dx.data<float>(), maps, h, w, p, beta, nullptr)));
}
}  // namespace

// rnorm and cnorm differ only in their CPU functions and kernels. The launchers are passed as
// generic lambdas, which a build without CUDA never instantiates.
void rnorm_forward(const Tensor& x, const Tensor& y, const RnormParams& p) {
    forward(x, y, p, "rnorm_forward", [](auto... a) { rnorm_forward_cpu(a...); },
            [](auto... a) { rnorm_forward_cuda(a...); });
}

void rnorm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                    const RnormParams& p, float beta) {
    backward(x, y, dy, dx, p, beta, "rnorm_backward", [](auto... a) { rnorm_backward_cpu(a...); },
             [](auto... a) { rnorm_backward_cuda(a...); });
}

void cnorm_forward(const Tensor& x, const Tensor& y, const RnormParams& p) {
    forward(x, y, p, "cnorm_forward", [](auto... a) { cnorm_forward_cpu(a...); },
            [](auto... a) { cnorm_forward_cuda(a...); });
}

void cnorm_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                    const RnormParams& p, float beta) {
    backward(x, y, dy, dx, p, beta, "cnorm_backward", [](auto... a) { cnorm_backward_cpu(a...); },
             [](auto... a) { cnorm_backward_cuda(a...); });
}

}  // namespace convnet
