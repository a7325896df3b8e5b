// Streams other libraries hand us (DLPack's stream argument), pointers they hand us
// (__cuda_array_interface__), and streams made for the tests of both.
#include <map>
#include <mutex>

#include "core/cuda_runtime.h"
#include "kernels/common.cuh"

namespace convnet::cuda {

namespace {

cudaStream_t as_cuda_stream(std::uintptr_t stream) {
    if (stream == 0 || stream == 1) return cudaStreamLegacy;
    if (stream == 2) return cudaStreamPerThread;
    return reinterpret_cast<cudaStream_t>(stream);
}

}  // namespace

void make_stream_wait_for(int device, std::uintptr_t stream) {
    // Our kernels run on the legacy default stream: the same stream needs no event.
    if (stream == 0 || stream == 1) return;
    static std::mutex mutex;
    static std::map<int, cudaEvent_t>* events = new std::map<int, cudaEvent_t>;
    std::lock_guard<std::mutex> lock(mutex);
    const DeviceGuard on(device);
    cudaEvent_t& done = (*events)[device];
    if (!done) CONVNET_CUDA_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming));
    CONVNET_CUDA_CHECK(cudaEventRecord(done, nullptr));
    const cudaError_t err = cudaStreamWaitEvent(as_cuda_stream(stream), done, 0);
    if (err != cudaSuccess) {
        cudaGetLastError();
        throw ArgumentError(detail::concat("stream ", stream, " is not a live CUDA stream: ",
                                           cudaGetErrorString(err), " (CUDA error ", int(err),
                                           ")"));
    }
}

int pointer_device(const void* ptr) {
    cudaPointerAttributes a{};
    if (cudaPointerGetAttributes(&a, ptr) != cudaSuccess) {
        cudaGetLastError();  // before CUDA 11, host memory the runtime never saw is an error
        return -1;
    }
    return a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged ? a.device : -1;
}

std::uintptr_t stream_create(int device) {
    const DeviceGuard on(device);
    cudaStream_t stream = nullptr;
    CONVNET_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    return reinterpret_cast<std::uintptr_t>(stream);
}

void stream_destroy(std::uintptr_t stream) {
    const cudaError_t err = cudaStreamDestroy(as_cuda_stream(stream));
    if (err != cudaSuccess) {
        cudaGetLastError();
        throw ArgumentError(detail::concat("cannot destroy stream ", stream, ": ",
                                           cudaGetErrorString(err), " (CUDA error ", int(err),
                                           ")"));
    }
}

std::uintptr_t event_create(int device) {
    const DeviceGuard on(device);
    cudaEvent_t event = nullptr;
    CONVNET_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    return reinterpret_cast<std::uintptr_t>(event);
}

void event_destroy(std::uintptr_t event) {
    cudaEventDestroy(reinterpret_cast<cudaEvent_t>(event));   // at teardown: errors ignored
}

void event_record(std::uintptr_t event, std::uintptr_t stream) {
    CONVNET_CUDA_CHECK(cudaEventRecord(reinterpret_cast<cudaEvent_t>(event),
                                       as_cuda_stream(stream)));
}

bool event_done(std::uintptr_t event) {
    const cudaError_t err = cudaEventQuery(reinterpret_cast<cudaEvent_t>(event));
    if (err == cudaErrorNotReady) {
        cudaGetLastError();   // not an error: nothing for a later check to find
        return false;
    }
    CONVNET_CUDA_CHECK(err);
    return true;
}

}  // namespace convnet::cuda
