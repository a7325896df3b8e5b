// The runtime of the emulated CUDA device (CONVNET_CUDA=EMU): devices, memory, copies, events and
// kernel launches, on the CPU. Device memory is host memory registered to a device, so kernels
// dereference it directly; every call is synchronous, which keeps stream order trivially.
#include <cuda_runtime.h>

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#include "access_checks.h"
#include "core/check.h"
#include "errors.h"
#include "fibers.h"
#include "memory.h"
#include "streams.h"

namespace convnet::emu {

thread_local Builtins builtins;

namespace {

constexpr std::size_t kMemory = std::size_t(16) << 30;
constexpr std::size_t kSharedDefault = 48 * 1024;
constexpr unsigned kMaxThreads = 1024;

// What the emulated GPUs report, chosen by CONVNET_EMU_CC (default 8.0): compute capability,
// multiprocessors and clock of a typical part, and the shared memory a block may opt in to.
struct DeviceModel {
    const char* cc;
    int major, minor, sms, clock_khz;
    std::size_t shared_optin;
};
constexpr DeviceModel kModels[] = {
    {"7.5", 7, 5, 40, 1590000, 64 * 1024},     // T4: no TF32/BF16 mma, 64 KB per block
    {"8.0", 8, 0, 108, 1410000, 163 * 1024},   // A100
    {"8.6", 8, 6, 84, 1695000, 99 * 1024},     // RTX 3090 class
    {"9.0", 9, 0, 132, 1980000, 227 * 1024},   // H100
};

const DeviceModel& model() {
    static const DeviceModel& m = []() -> const DeviceModel& {
        const char* s = std::getenv("CONVNET_EMU_CC");
        const std::string want = s && *s ? s : "8.0";
        for (const DeviceModel& candidate : kModels)
            if (want == candidate.cc) return candidate;
        std::string known;
        for (const DeviceModel& candidate : kModels) known += std::string(" ") + candidate.cc;
        throw Error(detail::concat("CONVNET_EMU_CC=", want,
                                   ": the emulated device models compute capability", known));
    }();
    return m;
}

thread_local int this_thread_device = 0;
thread_local cudaError_t last_error = cudaSuccess;
thread_local const char* current_kernel = "";
thread_local std::vector<float> shared_buffer;

struct Registry {
    std::mutex mutex;
    std::map<const void*, int> shared_optin;                           // kernel -> bytes
};
Registry& registry() {
    static Registry r;
    return r;
}

}  // namespace

cudaError_t fail(cudaError_t e) {
    last_error = e;
    return e;
}

void kernel_error(const char* kernel, const std::string& what) {
    throw Error(detail::concat("emulated device: kernel ", kernel, ": ", what));
}

int current_device() { return this_thread_device; }

int device_count() {
    static const int n = [] {
        const char* s = std::getenv("CONVNET_EMU_DEVICES");
        const int v = s ? std::atoi(s) : 2;
        return v < 0 ? 0 : v;
    }();
    return n;
}

void require_compute_capability(int major, int minor, const char* what) {
    if (model().major * 10 + model().minor >= major * 10 + minor) return;
    throw Error(detail::concat("emulated device: kernel ", current_kernel, " uses ", what,
                               ", which needs sm_", major, minor, "; the device is sm_",
                               model().major, model().minor, " (CONVNET_EMU_CC=", model().cc,
                               ")"));
}

void unsupported(const char* what) {
    throw Error(detail::concat("emulated device: kernel ", current_kernel, " uses ", what,
                               ", which the emulator does not run yet"));
}

void* dynamic_shared() { return shared_buffer.data(); }

void run_grid(const LaunchConfig& c, void (*body)(const void*), const void* context) {
    const std::function<void()> thread_body = [&] { body(context); };
    const unsigned threads = c.block.x * c.block.y * c.block.z;
    CONVNET_CHECK(threads >= 1 && threads <= kMaxThreads, "emulated device: kernel ", c.kernel,
                  " launched with ", threads, " threads per block (1 to ", kMaxThreads, ")");
    const long long blocks = (long long)c.grid.x * c.grid.y * c.grid.z;
    CONVNET_CHECK(blocks >= 1 && c.grid.y <= 65535 && c.grid.z <= 65535, "emulated device: kernel ",
                  c.kernel, " launched with grid ", c.grid.x, "x", c.grid.y, "x", c.grid.z);
    check_launch_stream(c.stream, c.kernel);
    // As on the GPU: 48 KB of dynamic shared memory, more only up to what the kernel opted in
    // to with cudaFuncSetAttribute(MaxDynamicSharedMemorySize).
    std::size_t limit = kSharedDefault;
    {
        std::lock_guard<std::mutex> lock(registry().mutex);
        const auto it = registry().shared_optin.find(c.function);
        if (it != registry().shared_optin.end()) limit = std::max(limit, std::size_t(it->second));
    }
    CONVNET_CHECK(c.shared_bytes <= limit, "emulated device: kernel ", c.kernel, " asks for ",
                  c.shared_bytes, " bytes of dynamic shared memory; it may use ", limit,
                  " (above 48 KB only after cudaFuncSetAttribute, up to the device's ",
                  model().shared_optin, ")");
    const DeviceMemoryAccess open;
    const int device = this_thread_device;  // the launching thread's; blocks run on others too
    std::exception_ptr error;
    std::mutex error_mutex;
#pragma omp parallel for schedule(dynamic, 1)
    for (long long b = 0; b < blocks; ++b) {
        {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (error) continue;
        }
        try {
            current_kernel = c.kernel;
            builtins.grid_dim = c.grid, builtins.block_dim = c.block;
            builtins.block_index = uint3{unsigned(b % c.grid.x), unsigned(b / c.grid.x % c.grid.y),
                                unsigned(b / (long long)(c.grid.x * c.grid.y))};
            // Fresh dynamic shared memory per block, signalling NaNs until written.
            shared_buffer.assign((c.shared_bytes + 3) / 4, __uint_as_float(0x7fa00000u));
            const CheckedBlock checked(c.kernel, device, shared_buffer.data(), c.shared_bytes);
            run_block(c.block, c.kernel, thread_body);
        } catch (...) {
            std::lock_guard<std::mutex> lock(error_mutex);
            if (!error) error = std::current_exception();
        }
    }
    if (error) std::rethrow_exception(error);
}

}  // namespace convnet::emu

using namespace convnet::emu;

const char* cudaGetErrorString(cudaError_t error) {
    switch (error) {
        case cudaSuccess: return "no error";
        case cudaErrorInvalidValue: return "invalid argument";
        case cudaErrorMemoryAllocation: return "out of memory";
        case cudaErrorInvalidDevice: return "invalid device ordinal";
        case cudaErrorInvalidConfiguration: return "invalid configuration argument";
        case cudaErrorPeerAccessUnsupported: return "peer access is not supported between these two devices";
        case cudaErrorInvalidResourceHandle: return "invalid resource handle";
        case cudaErrorNotReady: return "device not ready";
        case cudaErrorPeerAccessAlreadyEnabled: return "peer access is already enabled";
        case cudaErrorPeerAccessNotEnabled: return "peer access has not been enabled";
    }
    return "unknown error";
}

cudaError_t cudaGetLastError() {
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

cudaError_t cudaGetDeviceCount(int* count) {
    model();  // a bad CONVNET_EMU_CC is reported here, the first thing the library asks
    *count = device_count();
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
    this_thread_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int* device) {
    *device = this_thread_device;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
    if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
    *prop = cudaDeviceProp{};
    std::snprintf(prop->name, sizeof prop->name, "convnet emulated device %d", device);
    prop->major = model().major, prop->minor = model().minor;
    prop->multiProcessorCount = model().sms;
    prop->totalGlobalMem = kMemory, prop->sharedMemPerBlock = kSharedDefault;
    prop->sharedMemPerBlockOptin = model().shared_optin, prop->maxThreadsPerBlock = int(kMaxThreads);
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
    if (device < 0 || device >= device_count()) return fail(cudaErrorInvalidDevice);
    switch (attr) {
        case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = int(model().shared_optin); break;
        case cudaDevAttrMultiProcessorCount: *value = model().sms; break;
        case cudaDevAttrClockRate: *value = model().clock_khz; break;
        case cudaDevAttrComputeCapabilityMajor: *value = model().major; break;
        case cudaDevAttrComputeCapabilityMinor: *value = model().minor; break;
        default: return fail(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize() { return cudaSuccess; }

cudaError_t cudaMalloc(void** ptr, std::size_t bytes) {
    void* p = device_alloc(this_thread_device, bytes);  // page-aligned, never null
    if (!p) return fail(cudaErrorMemoryAllocation);
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void* ptr) {
    if (!ptr) return cudaSuccess;
    return device_free(ptr) ? cudaSuccess : fail(cudaErrorInvalidValue);
}

cudaError_t cudaHostAlloc(void** ptr, std::size_t bytes, unsigned) {
    *ptr = std::malloc(std::max<std::size_t>(bytes, 1));
    return *ptr ? cudaSuccess : fail(cudaErrorMemoryAllocation);
}

cudaError_t cudaFreeHost(void* ptr) {
    std::free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind) {
    const DeviceMemoryAccess open;
    if (bytes) std::memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    if (stream_device(stream) < 0) return fail(cudaErrorInvalidResourceHandle);
    return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemcpy2DAsync(void* dst, std::size_t dpitch, const void* src, std::size_t spitch,
                              std::size_t width, std::size_t height, cudaMemcpyKind,
                              cudaStream_t stream) {
    if (stream_device(stream) < 0) return fail(cudaErrorInvalidResourceHandle);
    const DeviceMemoryAccess open;
    for (std::size_t r = 0; r < height; ++r)
        std::memmove(static_cast<char*>(dst) + r * dpitch,
                     static_cast<const char*>(src) + r * spitch, width);
    return cudaSuccess;
}


cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute, int value) {
    if (value < 0 || std::size_t(value) > model().shared_optin) return fail(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> lock(registry().mutex);
    registry().shared_optin[func] = value;
    return cudaSuccess;
}
