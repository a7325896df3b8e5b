// The one place where an op chooses between its CPU function and its CUDA kernel, and the argument
// checks every op dispatcher shares. Each op in csrc/ops/*.cpp checks its arguments, then calls
//
//     ops_detail::run_on_device(op, x,
//         CONVNET_CPU(foo_cpu<T>(x.data<T>(), ...)),
//         CONVNET_CUDA(foo_cuda(x.data<float>(), ..., nullptr)));
//
// run_on_device owns what every op used to repeat: the build-time CUDA switch (a build without
// nvcc compiles the CUDA branch away and reports that it has no CUDA kernels), the float32-only
// rule of the GPU path, the float/double choice of the CPU path, and making the tensors' GPU
// current for the launch (restoring the previous one afterwards, so a kernel for tensors on
// cuda:1 never runs on cuda:0).
#pragma once

#include <initializer_list>
#include <type_traits>
#include <utility>

#include "core/check.h"
#include "core/cuda_runtime.h"
#include "core/tensor.h"

// The CPU branch of an op: statements run with T, the element type, set to float or double.
#define CONVNET_CPU(...)                               \
    [&](auto convnet_element_type_tag_) {              \
        using T = decltype(convnet_element_type_tag_); \
        __VA_ARGS__;                                   \
    }

#ifdef CONVNET_WITH_CUDA
// The CUDA branch of an op: the statements that launch its kernel(s). In both branches a value
// given by `return` is what run_on_device returns.
#define CONVNET_CUDA(...) [&]() { __VA_ARGS__; }
#else
// Built without CUDA: the launchers do not exist, so the branch is not compiled at all.
#define CONVNET_CUDA(...) ::convnet::ops_detail::NoCudaKernels{}
#endif

namespace convnet::ops_detail {

// Checks that `t` is defined, has `dtype`, lives on `device` and has `ndim` dimensions (-1: any).
void expect(const Tensor& t, const char* op, const char* name, DType dtype, Device device,
            int ndim = -1);
void expect_shape(const Tensor& t, const char* op, const char* name, const Shape& shape);
// An optional argument (an output the caller may not want): when defined, it must have ref's
// dtype and device and the given shape.
void expect_if_given(const Tensor& t, const char* op, const char* name, const Tensor& ref,
                     const Shape& shape);
// Checks that every named tensor has ref's dtype, device and shape.
void expect_like(const Tensor& ref, const char* op,
                 std::initializer_list<std::pair<const Tensor*, const char*>> tensors);

// What CONVNET_CUDA gives in a build without CUDA.
struct NoCudaKernels {};
[[noreturn]] void no_cuda_kernels(const char* op);
// The GPU path computes in float32 only (float64 is for the CPU's gradient checks).
void require_float32_on_gpu(const Tensor& on, const char* op);

// Scratch for a CUDA launcher: `floats` float32 values on `device` from the caching allocator, so
// it costs no cudaMalloc after the first step; undefined when `floats` is 0.
Tensor gpu_workspace(std::int64_t floats, Device device);

// Which data a dispatch looks at: float tensors run the typed CPU function for their dtype and
// must be float32 on the GPU; raw storage (the dropout mask's bytes) has no element type.
enum class Data { floats, raw };

// Runs cpu(T{}) with T = float or double by `on`'s dtype when `on` is a CPU tensor, or cuda() with
// `on`'s GPU current when it is a CUDA tensor. Returns what they return.
template <Data kData = Data::floats, typename Cpu, typename Cuda>
decltype(auto) run_on_device(const char* op, const Tensor& on, Cpu&& cpu, Cuda&& cuda) {
    if (on.device().is_cuda()) {
        if constexpr (std::is_same_v<std::decay_t<Cuda>, NoCudaKernels>) {
            no_cuda_kernels(op);
        } else {
            if constexpr (kData == Data::floats) require_float32_on_gpu(on, op);
            const cuda::DeviceGuard current(on.device().index);
            return cuda();
        }
    }
    if (kData == Data::raw || on.dtype() == DType::f32) return cpu(float{});
    return cpu(double{});
}

}  // namespace convnet::ops_detail
