// eltsum / eltmax dispatch.
#include "ops/eltwise.h"

#include <string>

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

namespace {
void check_all(const std::vector<Tensor>& ts, const Tensor& like, const char* op,
               const char* name) {
    CONVNET_ARG_CHECK(!ts.empty(), op, ": needs at least one ", name);
    for (std::size_t i = 0; i < ts.size(); ++i) {
        const std::string label = std::string(name) + "[" + std::to_string(i) + "]";
        expect(ts[i], op, label.c_str(), like.dtype(), like.device());
        expect_shape(ts[i], op, label.c_str(), like.shape());
    }
}

template <typename T>
std::vector<const T*> pointers(const std::vector<Tensor>& ts) {
    std::vector<const T*> out;
    for (const Tensor& t : ts) out.push_back(t.data<T>());
    return out;
}

// Only the CUDA launchers take the outputs as a pointer list.
[[maybe_unused]] std::vector<float*> outputs(const std::vector<Tensor>& ts) {
    std::vector<float*> out;
    for (const Tensor& t : ts) out.push_back(t.data<float>());
    return out;
}
}  // namespace

void eltsum_forward(const std::vector<Tensor>& xs, const std::vector<double>& coeffs,
                    const Tensor& y) {
    const char* op = "eltsum_forward";
    check_all(xs, y, op, "xs");
    CONVNET_ARG_CHECK(coeffs.size() == xs.size(), op, ": ", xs.size(), " inputs but ",
                      coeffs.size(), " coefficients");
    ops_detail::run_on_device(
        op, y, CONVNET_CPU(eltsum_forward_cpu<T>(pointers<T>(xs), coeffs, y.data<T>(), y.numel())),
        CONVNET_CUDA(
            eltsum_forward_cuda(pointers<float>(xs), coeffs, y.data<float>(), y.numel(), nullptr)));
}

void eltsum_backward(const Tensor& dy, const std::vector<double>& coeffs,
                     const std::vector<Tensor>& dxs, float beta) {
    const char* op = "eltsum_backward";
    check_all(dxs, dy, op, "dxs");
    CONVNET_ARG_CHECK(coeffs.size() == dxs.size(), op, ": ", dxs.size(), " gradients but ",
                      coeffs.size(), " coefficients");
    ops_detail::run_on_device(
        op, dy,
        CONVNET_CPU(for (std::size_t i = 0; i < dxs.size(); ++i) scale_cpu<T>(
            dy.data<T>(), T(coeffs[i]), dxs[i].data<T>(), dy.numel(), T(beta))),
        CONVNET_CUDA(
            scale_cuda(dy.data<float>(), coeffs, outputs(dxs), dy.numel(), beta, nullptr)));
}

void eltmax_forward(const std::vector<Tensor>& xs, const Tensor& y) {
    const char* op = "eltmax_forward";
    check_all(xs, y, op, "xs");
    ops_detail::run_on_device(
        op, y, CONVNET_CPU(eltmax_forward_cpu<T>(pointers<T>(xs), y.data<T>(), y.numel())),
        CONVNET_CUDA(
            eltmax_forward_cuda(pointers<float>(xs), y.data<float>(), y.numel(), nullptr)));
}

void eltmax_backward(const std::vector<Tensor>& xs, const Tensor& y, const Tensor& dy,
                     const std::vector<Tensor>& dxs, float beta) {
    const char* op = "eltmax_backward";
    check_all(xs, y, op, "xs");
    check_all(dxs, y, op, "dxs");
    expect(dy, op, "dy", y.dtype(), y.device());
    expect_shape(dy, op, "dy", y.shape());
    CONVNET_ARG_CHECK(xs.size() == dxs.size(), op, ": ", xs.size(), " inputs but ", dxs.size(),
                      " gradients");
    ops_detail::run_on_device(
        op, y,
        CONVNET_CPU(for (std::size_t i = 0; i < xs.size(); ++i) eltmax_backward_cpu<T>(
            xs[i].data<T>(), y.data<T>(), dy.data<T>(), dxs[i].data<T>(), y.numel(), T(beta))),
        CONVNET_CUDA(eltmax_backward_cuda(pointers<float>(xs), y.data<float>(), dy.data<float>(),
                                          outputs(dxs), y.numel(), beta, nullptr)));
}

void eltwise_scale(const Tensor& in, double c, const Tensor& out, float beta) {
    const char* op = "eltwise_scale";
    expect(in, op, "in", in.dtype(), in.device());
    expect(out, op, "out", in.dtype(), in.device());
    expect_shape(out, op, "out", in.shape());
    ops_detail::run_on_device(
        op, in, CONVNET_CPU(scale_cpu<T>(in.data<T>(), T(c), out.data<T>(), in.numel(), T(beta))),
        CONVNET_CUDA(
            scale_cuda(in.data<float>(), {c}, {out.data<float>()}, in.numel(), beta, nullptr)));
}

}  // namespace convnet
