// Streams and events of the emulated CUDA device. Every emulated call finishes before it returns,
// so work is always complete in stream order: synchronizing waits for nothing, and an event
// records the host time at which the work before it was done.
#include <cuda_runtime.h>

#include <chrono>

#include "streams.h"

namespace convnet::emu {

// Only the legacy default stream exists so far.
void check_launch_stream(cudaStream_t, const char*) {}

}  // namespace convnet::emu

cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }

struct CUevent_st {
    std::chrono::steady_clock::time_point when;
};

cudaError_t cudaEventCreate(cudaEvent_t* event) {
    *event = new CUevent_st{};
    return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    delete event;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t) {
    event->when = std::chrono::steady_clock::now();   // launches are synchronous
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t) { return cudaSuccess; }

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    *ms = std::chrono::duration<float, std::milli>(end->when - start->when).count();
    return cudaSuccess;
}

