// LRN dispatch and the window rule.
#include "ops/lrn.h"

#include <algorithm>

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;

void LrnParams::window(std::int64_t f, std::int64_t channels, std::int64_t* first,
                       std::int64_t* last) const {
    const std::int64_t lo = blocked ? f / size * size : f - pre;
    *first = std::max<std::int64_t>(lo, 0);
    *last = std::min<std::int64_t>(lo + size - 1, channels - 1);
}

static void check_params(const LrnParams& p, const char* op) {
    CONVNET_ARG_CHECK(p.size >= 1, op, ": size must be >= 1, got ", p.size);
    CONVNET_ARG_CHECK(p.pre >= 0 && p.pre < p.size, op, ": window offset out of range");
    CONVNET_ARG_CHECK(p.k > 0 || p.alpha > 0, op, ": k and alpha cannot both be <= 0");
}

void lrn_forward(const Tensor& x, const Tensor& y, const LrnParams& p) {
    const char* op = "lrn_forward";
    check_params(p, op);
    expect(x, op, "x", x.dtype(), x.device(), 4);
    ops_detail::expect_like(x, op, {{&y, "y"}});
    const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
    ops_detail::run_on_device(
        op, x, CONVNET_CPU(lrn_forward_cpu<T>(x.data<T>(), y.data<T>(), n, c, hw, p)),
        CONVNET_CUDA(lrn_forward_cuda(x.data<float>(), y.data<float>(), n, c, hw, p, nullptr)));
}

void lrn_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                  const LrnParams& p, float beta) {
    const char* op = "lrn_backward";
    check_params(p, op);
    expect(x, op, "x", x.dtype(), x.device(), 4);
    ops_detail::expect_like(x, op, {{&y, "y"}, {&dy, "dy"}, {&dx, "dx"}});
    const std::int64_t n = x.dim(0), c = x.dim(1), hw = x.dim(2) * x.dim(3);
    ops_detail::run_on_device(
        op, x,
        CONVNET_CPU(lrn_backward_cpu<T>(x.data<T>(), y.data<T>(), dy.data<T>(), dx.data<T>(), n, c,
                                        hw, p, T(beta))),
        CONVNET_CUDA(lrn_backward_cuda(x.data<float>(), y.data<float>(), dy.data<float>(),
                                       dx.data<float>(), n, c, hw, p, beta, nullptr)));
}

}  // namespace convnet
