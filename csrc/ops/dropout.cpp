// Dropout dispatch. Forward and backward are the same linear map (mask times a factor).
#include "ops/dropout.h"

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

double DropoutParams::kept_factor() const {
    const double keep = 1.0 - p;
    if (train) return inverted ? 1.0 / keep : 1.0;
    return inverted ? 1.0 : keep;
}

static void check_params(const DropoutParams& p, const char* op) {
    CONVNET_ARG_CHECK(p.p >= 0.0 && p.p < 1.0, op, ": p must be in [0, 1), got ", p.p);
}

// The Philox counter holds the block index j/4 in 32 bits.
static void check_size(std::int64_t n, const DropoutParams& p, const char* op) {
    CONVNET_ARG_CHECK(n >= 0 && (p.offset + std::uint64_t(n)) / 4 < (std::uint64_t(1) << 32), op,
                      ": stream positions past 2^34 (offset ", p.offset, ", ", n, " elements)");
}

void dropout_mask(std::uint8_t* mask, std::int64_t n, const DropoutParams& p) {
    check_params(p, "dropout_mask");
    check_size(n, p, "dropout_mask");
    dropout_mask_cpu(mask, n, p);
}

void dropout_mask_into(const Tensor& bytes, std::int64_t n, const DropoutParams& p) {
    const char* op = "dropout_mask_into";
    check_params(p, op);
    check_size(n, p, op);
    CONVNET_ARG_CHECK(bytes.defined(), op, ": the mask's storage is missing");
    CONVNET_ARG_CHECK(n >= 0 && std::size_t(n) <= bytes.nbytes(), op, ": ", n,
                      " mask bytes do not fit a tensor of ", bytes.nbytes(), " bytes");
    auto* mask = static_cast<std::uint8_t*>(bytes.raw());
    ops_detail::run_on_device<ops_detail::Data::raw>(
        op, bytes, [&](auto) { dropout_mask_cpu(mask, n, p); },
        CONVNET_CUDA(dropout_mask_cuda(mask, n, p, nullptr)));
}

static void apply(const Tensor& in, const Tensor& out, const DropoutParams& p, float beta,
                  const char* op, const char* in_name, const char* out_name) {
    check_params(p, op);
    expect(in, op, in_name, in.dtype(), in.device());
    expect(out, op, out_name, in.dtype(), in.device());
    expect_shape(out, op, out_name, in.shape());
    check_size(in.numel(), p, op);
    ops_detail::run_on_device(
        op, in,
        CONVNET_CPU(dropout_apply_cpu<T>(in.data<T>(), out.data<T>(), in.numel(), p, T(beta))),
        CONVNET_CUDA(
            dropout_apply_cuda(in.data<float>(), out.data<float>(), in.numel(), p, beta, nullptr)));
}

void dropout_forward(const Tensor& x, const Tensor& y, const DropoutParams& p) {
    apply(x, y, p, 0.f, "dropout_forward", "x", "y");
}

void dropout_backward(const Tensor& dy, const Tensor& dx, const DropoutParams& p, float beta) {
    apply(dy, dx, p, beta, "dropout_backward", "dy", "dx");
}

}  // namespace convnet
