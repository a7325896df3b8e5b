// What every kernel file uses: the launch check that turns a CUDA error into convnet::Error with
// file and line, grid-size helpers and the stream type behind the CUDA-free `void* stream`.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/check.h"

#define CONVNET_CUDA_CHECK(call)                                                              \
    do {                                                                                      \
        const cudaError_t convnet_err_ = (call);                                              \
        if (convnet_err_ != cudaSuccess)                                                      \
            throw ::convnet::Error(::convnet::detail::concat(__FILE__, ":", __LINE__, ": ", #call, \
                                                             " failed: ",                     \
                                                             cudaGetErrorString(convnet_err_))); \
    } while (0)

// After a <<<...>>> launch: configuration errors surface here, execution errors at the next sync.
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
