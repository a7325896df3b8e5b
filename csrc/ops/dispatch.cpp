// Argument checks and the errors of the op dispatch (ops/dispatch.h).
#include "ops/dispatch.h"

namespace convnet::ops_detail {

void expect(const Tensor& t, const char* op, const char* name, DType dtype, Device device,
            int ndim) {
    CONVNET_ARG_CHECK(t.defined(), op, ": ", name, " is missing");
    CONVNET_ARG_CHECK(t.dtype() == dtype, op, ": ", name, " must be ", dtype_name(dtype), ", got ",
                      dtype_name(t.dtype()));
    CONVNET_ARG_CHECK(t.device() == device, op, ": ", name, " is on ", t.device().str(),
                      " but the op runs on ", device.str());
    CONVNET_ARG_CHECK(ndim < 0 || t.ndim() == ndim, op, ": ", name, " must have ", ndim,
                      " dimensions, got shape ", shape_str(t.shape()));
}

void expect_shape(const Tensor& t, const char* op, const char* name, const Shape& shape) {
    CONVNET_ARG_CHECK(t.shape() == shape, op, ": ", name, " must have shape ", shape_str(shape),
                      ", got ", shape_str(t.shape()));
}

void expect_if_given(const Tensor& t, const char* op, const char* name, const Tensor& ref,
                     const Shape& shape) {
    if (!t.defined()) return;
    expect(t, op, name, ref.dtype(), ref.device());
    expect_shape(t, op, name, shape);
}

void expect_like(const Tensor& ref, const char* op,
                 std::initializer_list<std::pair<const Tensor*, const char*>> tensors) {
    for (const auto& [t, name] : tensors) {
        expect(*t, op, name, ref.dtype(), ref.device());
        expect_shape(*t, op, name, ref.shape());
    }
}

void no_cuda_kernels(const char* op) {
    throw Error(detail::concat(op,
                               ": this build of convnet has no CUDA kernels (built without "
                               "nvcc); run it on the CPU"));
}

void require_float32_on_gpu(const Tensor& on, const char* op) {
    CONVNET_ARG_CHECK(on.dtype() == DType::f32, op, ": the GPU path takes float32");
}

Tensor gpu_workspace(std::int64_t floats, Device device) {
    return floats > 0 ? Tensor::empty({floats}, DType::f32, device) : Tensor();
}

}  // namespace convnet::ops_detail
