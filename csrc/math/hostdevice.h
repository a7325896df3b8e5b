// CONVNET_HD marks functions compiled for both the host and the GPU, so the CPU path and the
// CUDA kernels share one definition of every formula that must agree bit for bit.
#pragma once

#if defined(__CUDACC__)
#define CONVNET_HD __host__ __device__ __forceinline__
#else
#define CONVNET_HD inline
#endif
