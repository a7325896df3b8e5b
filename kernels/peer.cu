// Copies between GPUs as the paper's two columns exchange activations and gradients: peer to peer
// (cudaMemcpyPeerAsync) where the devices can reach each other, else staged through pinned host
// memory, always on a copy stream of the sending device so that compute is not blocked by the host.
// Events order each copy against both devices' compute streams (the legacy default stream that
// every kernel launches on): the copy starts after the work so far on both, and both wait for the
// copy before their next work. The producer waits as well because the net reuses its buffers every
// step: the source must not be overwritten while the copy still reads it.
#include <map>
#include <mutex>
#include <set>
#include <utility>

#include "core/cuda_runtime.h"
#include "kernels/common.cuh"

namespace convnet::cuda {

namespace {

// One device's copy machinery, created on first use with that device current.
struct CopyEngine {
    cudaStream_t stream = nullptr;       // non-blocking: never serialised with the compute stream
    cudaEvent_t compute_mark = nullptr;  // recorded on the compute stream before a copy
    cudaEvent_t copied = nullptr;        // recorded on `stream` after a copy
    void* staging = nullptr;             // pinned host memory for the host path from this device
    std::size_t staging_bytes = 0;
};

struct PeerState {
    std::mutex mutex;
    std::map<int, CopyEngine> engines;
    std::set<std::pair<int, int>> enabled;  // (device, peer it may access)
    CopyCounts counts;
};
PeerState& state() {
    static PeerState* s = new PeerState;  // leaked: CUDA may be torn down before static destructors
    return *s;
}

void check_device(int device, const char* op) {
    const int n = device_count();
    CONVNET_ARG_CHECK(device >= 0 && device < n, op, ": cuda:", device, " does not exist (", n,
                      " GPU(s))");
}

// The engine of the current device `device`; the caller holds the state's mutex.
CopyEngine& engine(PeerState& s, int device) {
    CopyEngine& e = s.engines[device];
    if (!e.stream) {
        CONVNET_CUDA_CHECK(cudaStreamCreateWithFlags(&e.stream, cudaStreamNonBlocking));
        CONVNET_CUDA_CHECK(cudaEventCreateWithFlags(&e.compute_mark, cudaEventDisableTiming));
        CONVNET_CUDA_CHECK(cudaEventCreateWithFlags(&e.copied, cudaEventDisableTiming));
    }
    return e;
}

// Marks the work so far on `device`'s compute stream.
CopyEngine& mark_compute(PeerState& s, int device) {
    const DeviceGuard on(device);
    CopyEngine& e = engine(s, device);
    CONVNET_CUDA_CHECK(cudaEventRecord(e.compute_mark, nullptr));
    return e;
}

// Makes `device`'s compute stream wait for `event`.
void compute_waits(int device, cudaEvent_t event) {
    const DeviceGuard on(device);
    CONVNET_CUDA_CHECK(cudaStreamWaitEvent(nullptr, event, 0));
}

// Pinned host memory of at least `bytes` for `e`; growing it waits for every copy in flight,
// since an earlier copy may still be reading the old buffer.
void* staging(PeerState& s, CopyEngine& e, std::size_t bytes) {
    if (e.staging_bytes >= bytes) return e.staging;
    for (auto& [device, other] : s.engines) {
        const DeviceGuard on(device);
        CONVNET_CUDA_CHECK(cudaStreamSynchronize(other.stream));
    }
    if (e.staging) host_free_pinned(e.staging);
    e.staging = nullptr, e.staging_bytes = 0;
    e.staging = host_alloc_pinned(bytes);
    e.staging_bytes = bytes;
    return e.staging;
}

}  // namespace

bool can_access_peer(int device, int peer) {
    check_device(device, "can_access_peer");
    check_device(peer, "can_access_peer");
    if (device == peer) return false;
    int can = 0;
    CONVNET_CUDA_CHECK(cudaDeviceCanAccessPeer(&can, device, peer));
    return can != 0;
}

void enable_peer_access(const std::vector<int>& devices) {
    PeerState& s = state();
    for (int device : devices)
        for (int peer : devices) {
            if (device == peer || !can_access_peer(device, peer)) continue;
            std::lock_guard<std::mutex> lock(s.mutex);
            const DeviceGuard on(device);
            const cudaError_t err = cudaDeviceEnablePeerAccess(peer, 0);
            if (err == cudaErrorPeerAccessAlreadyEnabled) {
                cudaGetLastError();  // by an earlier net or another library: what we want
            } else if (err != cudaSuccess) {
                cudaGetLastError();
                throw Error(detail::concat("cannot enable peer access from cuda:", device,
                                           " to cuda:", peer, ": ", cudaGetErrorString(err),
                                           " (CUDA error ", int(err), ")"));
            }
            s.enabled.insert({device, peer});
        }
}

bool peer_access_enabled(int device, int peer) {
    PeerState& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    return s.enabled.count({device, peer}) > 0;
}

const char* copy_path_name(CopyPath path) {
    switch (path) {
        case CopyPath::same_device: return "device";
        case CopyPath::peer: return "peer";
        case CopyPath::host: return "host";
    }
    return "?";
}

CopyPath copy_path(int src_device, int dst_device) {
    if (src_device == dst_device) return CopyPath::same_device;
    return peer_access_enabled(src_device, dst_device) ? CopyPath::peer : CopyPath::host;
}

CopyPath copy_between_devices(void* dst, int dst_device, const void* src, int src_device,
                              std::size_t bytes) {
    const CopyPath path = copy_path(src_device, dst_device);
    PeerState& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    if (path == CopyPath::same_device) {
        const DeviceGuard on(src_device);  // in stream order on the device's compute stream
        CONVNET_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, nullptr));
        ++s.counts.same_device;
        return path;
    }
    CopyEngine& to = mark_compute(s, dst_device);  // the destination is no longer read
    CopyEngine& from = mark_compute(s, src_device);  // the source is written
    CopyEngine* last = &from;                         // the engine whose `copied` ends the copy
    {
        const DeviceGuard on(src_device);
        CONVNET_CUDA_CHECK(cudaStreamWaitEvent(from.stream, from.compute_mark, 0));
        CONVNET_CUDA_CHECK(cudaStreamWaitEvent(from.stream, to.compute_mark, 0));
        if (path == CopyPath::peer) {
            CONVNET_CUDA_CHECK(
                cudaMemcpyPeerAsync(dst, dst_device, src, src_device, bytes, from.stream));
        } else {
            void* host = staging(s, from, bytes);
            CONVNET_CUDA_CHECK(
                cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, from.stream));
        }
        CONVNET_CUDA_CHECK(cudaEventRecord(from.copied, from.stream));
    }
    if (path == CopyPath::host) {  // the second leg, on the receiving device's copy stream
        const DeviceGuard on(dst_device);
        CONVNET_CUDA_CHECK(cudaStreamWaitEvent(to.stream, from.copied, 0));
        CONVNET_CUDA_CHECK(
            cudaMemcpyAsync(dst, from.staging, bytes, cudaMemcpyHostToDevice, to.stream));
        CONVNET_CUDA_CHECK(cudaEventRecord(to.copied, to.stream));
        last = &to;
    }
    compute_waits(dst_device, last->copied);
    compute_waits(src_device, last->copied);
    ++(path == CopyPath::peer ? s.counts.peer : s.counts.host);
    return path;
}

void memcpy_peer(void* dst, int dst_device, const void* src, int src_device, std::size_t bytes) {
    check_device(dst_device, "memcpy_peer");
    check_device(src_device, "memcpy_peer");
    const DeviceGuard on(src_device);
    const cudaError_t err = cudaMemcpyPeerAsync(dst, dst_device, src, src_device, bytes, nullptr);
    if (err != cudaSuccess) {
        cudaGetLastError();
        throw ArgumentError(detail::concat("cudaMemcpyPeerAsync of ", bytes, " bytes from ", src,
                                           " on cuda:", src_device, " to ", dst, " on cuda:",
                                           dst_device, ": ", cudaGetErrorString(err),
                                           " (CUDA error ", int(err), ")"));
    }
    CONVNET_CUDA_CHECK(cudaStreamSynchronize(nullptr));
}

CopyCounts copy_counts() {
    PeerState& s = state();
    std::lock_guard<std::mutex> lock(s.mutex);
    return s.counts;
}

}  // namespace convnet::cuda
