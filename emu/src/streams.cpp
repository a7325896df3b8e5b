// Streams and events of the emulated CUDA device. Every emulated call finishes before it returns,
// so work is always complete in stream order: synchronizing and waiting wait for nothing, and an
// event records the host time at which the work before it was done. What is checked is what CUDA
// checks: each stream and event belongs to the device current at its creation, a destroyed or
// foreign handle is cudaErrorInvalidResourceHandle, an event is recorded only on a stream of its
// own device, and a kernel launches only on a stream of the current device.
// Handles are never freed, only marked destroyed, so a stale handle is always recognised as one
// (a freed address could otherwise come back as a new, valid handle).
#include <cuda_runtime.h>

#include <chrono>
#include <mutex>
#include <unordered_set>

#include "core/check.h"
#include "errors.h"
#include "memory.h"
#include "streams.h"

struct CUstream_st {
    int device;
    unsigned flags;
    bool live = true;
};

struct CUevent_st {
    int device;
    unsigned flags;
    bool live = true;
    bool recorded = false;
    std::chrono::steady_clock::time_point when;
};

namespace convnet::emu {

namespace {

struct Handles {
    std::mutex mutex;
    std::unordered_set<const CUstream_st*> streams;
    std::unordered_set<const CUevent_st*> events;
};
Handles& handles() {
    static Handles* h = new Handles;  // outlives the static destructors that may still sync
    return *h;
}

bool is_default_stream(cudaStream_t s) {
    return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread;
}

// A new handle of the current device, registered in `live` (one of Handles' sets).
template <typename Handle>
Handle* create(std::unordered_set<const Handle*>& live, unsigned flags) {
    auto* h = new Handle{current_device(), flags};
    std::lock_guard<std::mutex> lock(handles().mutex);
    live.insert(h);
    return h;
}

// The live event behind `event`, or nullptr.
CUevent_st* live_event(cudaEvent_t event) {
    std::lock_guard<std::mutex> lock(handles().mutex);
    return handles().events.count(event) && event->live ? event : nullptr;
}

}  // namespace

int stream_device(cudaStream_t stream) {
    if (is_default_stream(stream)) return current_device();
    std::lock_guard<std::mutex> lock(handles().mutex);
    return handles().streams.count(stream) && stream->live ? stream->device : -1;
}

void check_launch_stream(cudaStream_t stream, const char* kernel) {
    const int device = stream_device(stream);
    CONVNET_CHECK(device >= 0, "emulated device: kernel ", kernel, " launched on stream ",
                  static_cast<const void*>(stream), ", which is destroyed or was never created");
    CONVNET_CHECK(device == current_device(), "emulated device: kernel ", kernel,
                  " launched on a stream of cuda:", device, " while cuda:", current_device(),
                  " is current");
}

}  // namespace convnet::emu

using namespace convnet::emu;

cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned flags) {
    if (!stream || (flags & ~cudaStreamNonBlocking)) return fail(cudaErrorInvalidValue);
    *stream = create(handles().streams, flags);
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t* stream) {
    return cudaStreamCreateWithFlags(stream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    if (is_default_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
    std::lock_guard<std::mutex> lock(handles().mutex);
    if (!handles().streams.count(stream) || !stream->live) return fail(cudaErrorInvalidResourceHandle);
    stream->live = false;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    return stream_device(stream) < 0 ? cudaErrorInvalidResourceHandle : cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned flags) {
    if (flags != 0) return fail(cudaErrorInvalidValue);
    // The event may be another device's: that is how one GPU waits for another.
    if (stream_device(stream) < 0 || !live_event(event)) return fail(cudaErrorInvalidResourceHandle);
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned flags) {
    if (!event || (flags & ~(cudaEventBlockingSync | cudaEventDisableTiming)))
        return fail(cudaErrorInvalidValue);
    *event = create(handles().events, flags);
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t* event) {
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    CUevent_st* e = live_event(event);
    if (!e) return fail(cudaErrorInvalidResourceHandle);
    e->live = false;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    CUevent_st* e = live_event(event);
    if (!e || stream_device(stream) != e->device) return fail(cudaErrorInvalidResourceHandle);
    e->recorded = true;
    e->when = std::chrono::steady_clock::now();   // launches are synchronous
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    return live_event(event) ? cudaSuccess : cudaErrorInvalidResourceHandle;
}

cudaError_t cudaEventQuery(cudaEvent_t event) {   // the work before it is always done
    return live_event(event) ? cudaSuccess : fail(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
    const CUevent_st* a = live_event(start);
    const CUevent_st* b = live_event(end);
    if (!ms) return fail(cudaErrorInvalidValue);
    const bool timed = a && b && a->recorded && b->recorded &&
                       !((a->flags | b->flags) & cudaEventDisableTiming);
    if (!timed) return fail(cudaErrorInvalidResourceHandle);
    *ms = std::chrono::duration<float, std::milli>(b->when - a->when).count();
    return cudaSuccess;
}
