// What every kernel file uses: the launch check that turns a CUDA error into convnet::Error with
// file and line, grid-size and grid-stride index helpers, the backward kernels' accumulation rule,
// and the stream type behind the CUDA-free `void* stream`.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <limits>

#include "core/check.h"

#define CONVNET_CUDA_CHECK(call)                                                              \
    do {                                                                                      \
        const cudaError_t convnet_err_ = (call);                                              \
        if (convnet_err_ != cudaSuccess)                                                      \
            throw ::convnet::Error(::convnet::detail::concat(__FILE__, ":", __LINE__, ": ", #call, \
                                                             " failed: ",                     \
                                                             cudaGetErrorString(convnet_err_))); \
    } while (0)

// Every kernel launch is CONVNET_LAUNCH(grid, block, shared_bytes, stream, kernel)(arguments...):
// under nvcc the <<<grid, block, shared_bytes, stream>>> launch. One macro for all of them, so a
// launch can be redirected (to an emulated device, say) without touching the kernels. The kernel
// comes last because its template arguments may hold commas.
// A kernel's dynamically sized shared memory (the launch's shared_bytes) is
// CONVNET_DYNAMIC_SHARED(type, name), an array `name`.
#if defined(CONVNET_CUDA_EMULATED)  // the emulated device (emu/include) runs them on the CPU
#define CONVNET_LAUNCH(grid, block, shared_bytes, stream, ...) \
    CONVNET_EMU_LAUNCH(grid, block, shared_bytes, stream, __VA_ARGS__)
#define CONVNET_DYNAMIC_SHARED(type, name) CONVNET_EMU_DYNAMIC_SHARED(type, name)
#else
#define CONVNET_LAUNCH(grid, block, shared_bytes, stream, ...) \
    __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#define CONVNET_DYNAMIC_SHARED(type, name) extern __shared__ type name[]
#endif

// After a launch: configuration errors surface here, execution errors at the next sync.
#define CONVNET_LAUNCH_CHECK() CONVNET_CUDA_CHECK(cudaGetLastError())

namespace convnet::cuda {

inline cudaStream_t as_stream(void* stream) { return static_cast<cudaStream_t>(stream); }

// Blocks for a grid-stride loop over n elements: enough to fill the GPU, never more than needed.
inline unsigned grid_for(std::int64_t n, int threads) {
    const std::int64_t blocks = (n + threads - 1) / threads;
    constexpr std::int64_t kMaxBlocks = 65535LL * 8;
    return static_cast<unsigned>(blocks < 1 ? 1 : (blocks > kMaxBlocks ? kMaxBlocks : blocks));
}

}  // namespace convnet::cuda

namespace convnet {

// Grid-stride loop bounds in the kernel's index type.
template <typename Index>
__device__ __forceinline__ Index first_index() {
    return Index(blockIdx.x) * Index(blockDim.x) + Index(threadIdx.x);
}
template <typename Index>
__device__ __forceinline__ Index index_stride() {
    return Index(gridDim.x) * Index(blockDim.x);
}

// Calls f(int{}) when every element offset of a tensor of `numel` elements, and a grid-stride step
// past the last, fits 32-bit arithmetic (any realistic layer: up to 2^30 elements), otherwise
// f(std::int64_t{}); f instantiates its kernel for that index type.
template <typename F>
void with_index(std::int64_t numel, F&& f) {
    if (numel <= std::numeric_limits<int>::max() / 2)
        f(int{});
    else
        f(std::int64_t{});
}

// The backward kernels' accumulation rule: dx = g, or beta_acc * dx + g (dx is not read when
// beta_acc is 0: it may hold garbage).
__device__ __forceinline__ void store_grad(float* dx, float g, float beta_acc) {
    *dx = beta_acc == 0.f ? g : __fadd_rn(__fmul_rn(beta_acc, *dx), g);
}

}  // namespace convnet
