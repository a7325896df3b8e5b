// Concatenation dispatch.
#include "ops/concat.h"

#include <string>

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;

namespace {
std::vector<std::int64_t> widths_of(const std::vector<Tensor>& parts, const Tensor& whole,
                                    const char* op, const char* name) {
    CONVNET_ARG_CHECK(!parts.empty(), op, ": needs at least one input");
    expect(whole, op, "y", whole.dtype(), whole.device(), 2);
    std::vector<std::int64_t> widths;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const std::string label = std::string(name) + "[" + std::to_string(i) + "]";
        expect(parts[i], op, label.c_str(), whole.dtype(), whole.device());
        CONVNET_ARG_CHECK(parts[i].ndim() >= 1 && parts[i].dim(0) == whole.dim(0), op, ": ", label,
                          " must have ", whole.dim(0), " samples, got shape ",
                          shape_str(parts[i].shape()));
        widths.push_back(whole.dim(0) ? parts[i].numel() / whole.dim(0) : 0);
        total += widths.back();
    }
    CONVNET_ARG_CHECK(total == whole.dim(1), op, ": the inputs hold ", total,
                      " features per sample but y has ", whole.dim(1));
    return widths;
}

template <typename T>
std::vector<T*> pointers(const std::vector<Tensor>& ts) {
    std::vector<T*> out;
    for (const Tensor& t : ts) out.push_back(t.data<T>());
    return out;
}
}  // namespace

void concat_forward(const std::vector<Tensor>& xs, const Tensor& y) {
    const char* op = "concat_forward";
    const auto widths = widths_of(xs, y, op, "xs");
    ops_detail::run_on_device(
        op, y,
        CONVNET_CPU(concat_copy_cpu<T>(pointers<T>(xs), widths, y.data<T>(), y.dim(0), true, T(0))),
        CONVNET_CUDA(concat_copy_cuda(pointers<float>(xs), widths, y.data<float>(), y.dim(0), true,
                                      0.f, nullptr)));
}

void concat_backward(const Tensor& dy, const std::vector<Tensor>& dxs, float beta) {
    const char* op = "concat_backward";
    const auto widths = widths_of(dxs, dy, op, "dxs");
    ops_detail::run_on_device(
        op, dy,
        CONVNET_CPU(
            concat_copy_cpu<T>(pointers<T>(dxs), widths, dy.data<T>(), dy.dim(0), false, T(beta))),
        CONVNET_CUDA(concat_copy_cuda(pointers<float>(dxs), widths, dy.data<float>(), dy.dim(0),
                                      false, beta, nullptr)));
}

}  // namespace convnet
