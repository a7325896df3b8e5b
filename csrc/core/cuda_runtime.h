// The few CUDA runtime calls the core needs, behind a CUDA-free declaration so that files compiled
// by the host compiler never include cuda_runtime.h. Implemented in kernels/runtime.cu and only
// present when CONVNET_WITH_CUDA is defined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

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

// ---- between devices (kernels/peer.cu, kernels/streams.cu) ------------------------------------
// Whether GPU `device` can access `peer`'s memory directly (cudaDeviceCanAccessPeer); false for
// device == peer. A device that does not exist is an ArgumentError.
bool can_access_peer(int device, int peer);
// Enables peer access, both ways, between each pair of `devices` that can reach each other (one
// already enabled, by us or another library, is fine).
void enable_peer_access(const std::vector<int>& devices);
// Whether enable_peer_access opened `device` to `peer`.
bool peer_access_enabled(int device, int peer);

// How a copy between two GPUs went: within one GPU, peer to peer, or staged through host memory.
enum class CopyPath { same_device, peer, host };
const char* copy_path_name(CopyPath path);
// The path copy_between_devices takes from `src_device` to `dst_device` now.
CopyPath copy_path(int src_device, int dst_device);
// Copies `bytes` from `src` on GPU src_device to `dst` on GPU dst_device without blocking the host:
// on the source device's copy stream, after the work so far on both devices' compute streams
// (so that the source is written and the destination no longer read), and before any later work
// on either (the consumer reads the result, the producer may overwrite the source). Peer to peer
// when enable_peer_access opened the pair, else through pinned host memory.
CopyPath copy_between_devices(void* dst, int dst_device, const void* src, int src_device,
                              std::size_t bytes);
// A blocking cudaMemcpyPeerAsync outside any net (tests of the runtime's checks); a refused copy
// is an ArgumentError with the runtime's reason.
void memcpy_peer(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes);
// Copies of each path since the process started (tests assert which path ran).
struct CopyCounts {
    long long same_device = 0, peer = 0, host = 0;
};
CopyCounts copy_counts();

// DLPack's stream argument: makes the consumer's `stream` (1 or 0: the legacy default stream,
// 2: the per-thread default stream, otherwise a cudaStream_t) wait for the work so far on
// `device`'s compute stream. An invalid handle is an ArgumentError where CUDA reports it.
void make_stream_wait_for(int device, std::uintptr_t stream);
// The GPU whose memory `ptr` points into, or -1 when it is not device memory.
int pointer_device(const void* ptr);
// A new non-blocking stream on `device`, and its end (a second stream beside the compute
// stream: csrc/comm/rank_sum.cpp's, and the tests of the stream checks).
std::uintptr_t stream_create(int device);
void stream_destroy(std::uintptr_t stream);
// Events of `device` (without timing), recorded on `stream` after the work so far there, and
// whether that work is done yet (cudaEventQuery: polled instead of a blocking wait).
std::uintptr_t event_create(int device);
void event_destroy(std::uintptr_t event);
void event_record(std::uintptr_t event, std::uintptr_t stream);
bool event_done(std::uintptr_t event);

}  // namespace convnet::cuda
