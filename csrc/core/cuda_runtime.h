// The few CUDA runtime calls the core needs, behind a CUDA-free declaration so that files compiled
// by the host compiler never include cuda_runtime.h. Implemented in kernels/runtime.cu and only
// present when CONVNET_WITH_CUDA is defined.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace convnet::cuda {

// Number of GPUs; 0 (never an error) when there is no driver or no device.
int device_count();
// cudaMalloc on `device`; throws convnet::Error naming the byte count when memory runs out.
void* malloc_on(int device, std::size_t bytes);
void free_on(int device, void* ptr);
// Synchronous copies; `kind`: 0 host->device, 1 device->host, 2 device->device.
void memcpy_sync(void* dst, const void* src, std::size_t bytes, int kind);

// Page-locked host memory (cudaHostAlloc): copies from it to a GPU run by DMA at full speed.
void* host_alloc_pinned(std::size_t bytes);
void host_free_pinned(void* ptr);
// Makes `device` current for the calling thread: kernels launch there.
void set_device(int device);
// The device current for the calling thread.
int current_device();

// Makes `device` current for the guard's lifetime and then restores the device that was current
// before, so that work for one GPU never leaves the caller on another.
class DeviceGuard {
public:
    explicit DeviceGuard(int device);
    ~DeviceGuard();
    DeviceGuard(const DeviceGuard&) = delete;
    DeviceGuard& operator=(const DeviceGuard&) = delete;

private:
    int previous_;
};
// Waits for all work on `device`.
void synchronize(int device);
// Milliseconds per call of `work` (which launches on the default stream of `device`), measured
// with CUDA events around `repeats` calls after `warmup` untimed ones.
double time_ms(int device, const std::function<void()>& work, int repeats, int warmup);

// What the benchmark's limits are computed from.
struct DeviceInfo {
    std::string name;
    int major = 0, minor = 0, sms = 0;
    double clock_ghz = 0.0;          // the SM clock the driver reports
    double memory_gib = 0.0;
};
DeviceInfo device_info(int device);

}  // namespace convnet::cuda
