// The CUDA runtime calls behind csrc/core/cuda_runtime.h: device discovery, memory and copies.
// The runtime is linked statically; with no driver cudaGetDeviceCount fails (error 35), which
// means "no GPU", not a failure of the library.
#include "core/cuda_runtime.h"
#include "kernels/common.cuh"

namespace convnet::cuda {

int device_count() {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess) {
        cudaGetLastError();  // clear the sticky "insufficient driver" error
        return 0;
    }
    return count;
}

void* malloc_on(int device, std::size_t bytes) {
    CONVNET_CUDA_CHECK(cudaSetDevice(device));
    void* ptr = nullptr;
    const cudaError_t err = cudaMalloc(&ptr, bytes);
    if (err != cudaSuccess) {
        cudaGetLastError();
        throw Error(detail::concat("out of GPU memory on cuda:", device, " allocating ", bytes,
                                   " bytes: ", cudaGetErrorString(err)));
    }
    return ptr;
}

void free_on(int device, void* ptr) {
    CONVNET_CUDA_CHECK(cudaSetDevice(device));
    CONVNET_CUDA_CHECK(cudaFree(ptr));
}

void memcpy_sync(void* dst, const void* src, std::size_t bytes, int kind) {
    const cudaMemcpyKind kinds[3] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                                     cudaMemcpyDeviceToDevice};
    CONVNET_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kinds[kind]));
}

}  // namespace convnet::cuda
