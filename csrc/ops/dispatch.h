// Helpers shared by the op dispatchers in csrc/ops/*.cpp: argument checks that name the op and
// the argument, and the float/double switch of the CPU path.
#pragma once

#include <initializer_list>
#include <string>
#include <utility>

#include "core/check.h"
#include "core/tensor.h"

namespace convnet::ops_detail {

// Checks that `t` is defined, has `dtype`, lives on `device` and has `ndim` dimensions (-1: any).
void expect(const Tensor& t, const char* op, const char* name, DType dtype, Device device,
            int ndim = -1);
void expect_shape(const Tensor& t, const char* op, const char* name, const Shape& shape);
// Checks that every named tensor has ref's dtype, device and shape.
void expect_like(const Tensor& ref, const char* op,
                 std::initializer_list<std::pair<const Tensor*, const char*>> tensors);

// Calls f(T{}) with T = float or double according to dtype.
template <typename F>
void with_float_type(DType dtype, F&& f) {
    if (dtype == DType::f32)
        f(float{});
    else
        f(double{});
}

[[noreturn]] void no_cuda_kernel(const char* op);

}  // namespace convnet::ops_detail
