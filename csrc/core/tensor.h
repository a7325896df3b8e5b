// Tensor: a dense, contiguous, row-major (NCHW for images) array of float32 (or float64, CPU
// only, for gradient checks) on one device. Storage is shared: reshape() and copies of a Tensor
// refer to the same memory, which lives as long as any of them. A tensor either owns its memory
// (from the device's caching allocator) or borrows it (e.g. a numpy array during an op call).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"

namespace convnet {

enum class DType { f32, f64 };

std::size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);
// The DType of a C++ element type, float or double (the CPU code's templates).
template <typename T>
constexpr DType dtype_of() {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8, "dtype_of: float or double");
    return sizeof(T) == 4 ? DType::f32 : DType::f64;
}

using Shape = std::vector<std::int64_t>;
std::string shape_str(const Shape& shape);

class Storage {
public:
    // Owning storage from the device's caching allocator.
    Storage(std::size_t bytes, Device device);
    // Borrowed memory; `on_release` (may be empty) runs when the last reference goes.
    Storage(void* data, std::size_t bytes, Device device, std::function<void()> on_release);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;

    void* data() const { return data_; }
    std::size_t bytes() const { return bytes_; }
    Device device() const { return device_; }

private:
    void* data_;
    std::size_t bytes_;
    Device device_;
    bool owned_;
    std::function<void()> on_release_;
};

class Tensor {
public:
    Tensor() = default;
    static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
    static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
    // A tensor over memory someone else owns; keep that memory alive while the tensor is used.
    static Tensor borrow(void* data, const Shape& shape, DType dtype, Device device,
                         std::function<void()> on_release = {});

    const Shape& shape() const { return shape_; }
    int ndim() const { return static_cast<int>(shape_.size()); }
    std::int64_t dim(int i) const { return shape_.at(i < 0 ? i + ndim() : i); }
    std::int64_t numel() const;
    std::size_t nbytes() const { return static_cast<std::size_t>(numel()) * dtype_size(dtype_); }
    DType dtype() const { return dtype_; }
    Device device() const { return storage_ ? storage_->device() : Device::cpu(); }
    bool defined() const { return storage_ != nullptr; }
    const std::shared_ptr<Storage>& storage() const { return storage_; }

    // nullptr for an undefined tensor, so optional arguments pass straight to the kernels.
    void* raw() const { return storage_ ? storage_->data() : nullptr; }
    template <typename T>
    T* data() const { return static_cast<T*>(raw()); }

    // Same storage, new shape with the same number of elements.
    Tensor reshape(const Shape& shape) const;
    // A copy on `device` (a new storage even when the device is the same).
    Tensor to(Device device) const;
    // Copies src's elements into this tensor's storage (the handle itself does not change).
    void copy_from(const Tensor& src) const;

private:
    std::shared_ptr<Storage> storage_;
    Shape shape_;
    DType dtype_ = DType::f32;
};

}  // namespace convnet
