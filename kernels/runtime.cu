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

void set_device(int device) { CONVNET_CUDA_CHECK(cudaSetDevice(device)); }

int current_device() {
    int device = 0;
    CONVNET_CUDA_CHECK(cudaGetDevice(&device));
    return device;
}

DeviceGuard::DeviceGuard(int device) : previous_(current_device()) {
    if (device != previous_) set_device(device);
}

DeviceGuard::~DeviceGuard() {
    // A destructor must not throw; cudaSetDevice back to a device that was valid cannot fail
    // short of a lost context, which the next checked call reports.
    int now = previous_;
    if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

void* malloc_on(int device, std::size_t bytes) {
    const DeviceGuard on(device);
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
    const DeviceGuard on(device);
    CONVNET_CUDA_CHECK(cudaFree(ptr));
}

void memcpy_sync(void* dst, const void* src, std::size_t bytes, int kind) {
    const cudaMemcpyKind kinds[3] = {cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost,
                                     cudaMemcpyDeviceToDevice};
    CONVNET_CUDA_CHECK(cudaMemcpy(dst, src, bytes, kinds[kind]));
}

void* host_alloc_pinned(std::size_t bytes) {
    void* ptr = nullptr;
    const cudaError_t err = cudaHostAlloc(&ptr, bytes, cudaHostAllocPortable);
    if (err != cudaSuccess) {
        cudaGetLastError();
        throw Error(detail::concat("cannot allocate ", bytes, " bytes of page-locked host memory: ",
                                   cudaGetErrorString(err)));
    }
    return ptr;
}

void host_free_pinned(void* ptr) { CONVNET_CUDA_CHECK(cudaFreeHost(ptr)); }

void synchronize(int device) {
    const DeviceGuard on(device);
    CONVNET_CUDA_CHECK(cudaDeviceSynchronize());
}

double time_ms(int device, const std::function<void()>& work, int repeats, int warmup) {
    const DeviceGuard on(device);
    for (int i = 0; i < warmup; ++i) work();
    cudaEvent_t start, stop;
    CONVNET_CUDA_CHECK(cudaEventCreate(&start));
    CONVNET_CUDA_CHECK(cudaEventCreate(&stop));
    CONVNET_CUDA_CHECK(cudaEventRecord(start));
    for (int i = 0; i < repeats; ++i) work();
    CONVNET_CUDA_CHECK(cudaEventRecord(stop));
    CONVNET_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.f;
    CONVNET_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    CONVNET_CUDA_CHECK(cudaEventDestroy(start));
    CONVNET_CUDA_CHECK(cudaEventDestroy(stop));
    return double(ms) / (repeats > 0 ? repeats : 1);
}

DeviceInfo device_info(int device) {
    cudaDeviceProp prop{};
    CONVNET_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    int clock_khz = 0;
    CONVNET_CUDA_CHECK(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device));
    DeviceInfo info;
    info.name = prop.name;
    info.major = prop.major, info.minor = prop.minor, info.sms = prop.multiProcessorCount;
    info.clock_ghz = clock_khz * 1e-6;
    info.memory_gib = double(prop.totalGlobalMem) / double(1ull << 30);
    return info;
}

}  // namespace convnet::cuda
