// Tensor and Storage: allocation through the caching allocator, borrowing, reshape and copies.
#include "core/tensor.h"

#include <cstring>
#include <sstream>

#include "core/allocator.h"
#include "core/check.h"
#include "core/cuda_runtime.h"

namespace convnet {

std::size_t dtype_size(DType dtype) { return dtype == DType::f32 ? 4 : 8; }
const char* dtype_name(DType dtype) { return dtype == DType::f32 ? "float32" : "float64"; }

std::string shape_str(const Shape& shape) {
    std::ostringstream s;
    s << "(";
    for (std::size_t i = 0; i < shape.size(); ++i) s << (i ? ", " : "") << shape[i];
    s << (shape.size() == 1 ? ",)" : ")");
    return s.str();
}

Storage::Storage(std::size_t bytes, Device device)
    : data_(CachingAllocator::of(device).allocate(bytes)), bytes_(bytes), device_(device),
      owned_(true) {}

Storage::Storage(void* data, std::size_t bytes, Device device, std::function<void()> on_release)
    : data_(data), bytes_(bytes), device_(device), owned_(false),
      on_release_(std::move(on_release)) {}

Storage::~Storage() {
    if (owned_) CachingAllocator::of(device_).release(data_);
    if (on_release_) on_release_();
}

static std::int64_t count_elements(const Shape& shape) {
    std::int64_t n = 1;
    for (auto d : shape) {
        CONVNET_ARG_CHECK(d >= 0, "tensor: negative dimension in shape ", shape_str(shape));
        n *= d;
    }
    return n;
}

std::int64_t Tensor::numel() const { return count_elements(shape_); }

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
    CONVNET_ARG_CHECK(device.is_cpu() || dtype == DType::f32,
                      "tensor: float64 tensors live on the CPU only");
    CONVNET_ARG_CHECK(device.is_cpu() || device.index < cuda_device_count(), "tensor: ",
                      device.str(), " is not available (", built_with_cuda() ? "" : "built without CUDA; ",
                      cuda_device_count(), " GPU(s) visible)");
    Tensor t;
    t.shape_ = shape;
    t.dtype_ = dtype;
    t.storage_ = std::make_shared<Storage>(count_elements(shape) * dtype_size(dtype), device);
    return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) {
    Tensor t = empty(shape, dtype, device);
    if (device.is_cpu()) {
        std::memset(t.raw(), 0, t.nbytes());
    } else {
        Tensor host = zeros(shape, dtype, Device::cpu());
        t.copy_from(host);
    }
    return t;
}

Tensor Tensor::borrow(void* data, const Shape& shape, DType dtype, Device device,
                      std::function<void()> on_release) {
    Tensor t;
    t.shape_ = shape;
    t.dtype_ = dtype;
    t.storage_ = std::make_shared<Storage>(data, count_elements(shape) * dtype_size(dtype), device,
                                           std::move(on_release));
    return t;
}

Tensor Tensor::reshape(const Shape& shape) const {
    CONVNET_ARG_CHECK(count_elements(shape) == numel(), "tensor.reshape: cannot view ",
                      shape_str(shape_), " as ", shape_str(shape));
    Tensor t = *this;
    t.shape_ = shape;
    return t;
}

Tensor Tensor::to(Device device) const {
    Tensor t = empty(shape_, dtype_, device);
    t.copy_from(*this);
    return t;
}

void Tensor::copy_from(const Tensor& src) const {
    CONVNET_ARG_CHECK(src.numel() == numel() && src.dtype() == dtype_, "tensor.copy_from: ",
                      dtype_name(src.dtype()), shape_str(src.shape()), " into ", dtype_name(dtype_),
                      shape_str(shape_));
    if (nbytes() == 0) return;
    if (device().is_cpu() && src.device().is_cpu()) {
        std::memcpy(raw(), src.raw(), nbytes());
        return;
    }
#ifdef CONVNET_WITH_CUDA
    const int kind = src.device().is_cpu() ? 0 : device().is_cpu() ? 1 : 2;
    cuda::memcpy_sync(raw(), src.raw(), nbytes(), kind);
#else
    throw Error("this convnet build has no CUDA support");
#endif
}

}  // namespace convnet
