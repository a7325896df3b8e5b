// Peer-to-peer access and copies between the emulated devices, and pointer attributes. Whether
// two devices can reach each other is one answer for every pair, CONVNET_EMU_PEER=0|1 (default 1),
// read once at the first query: with 0 a net on two devices takes the host-staged copy path,
// as between GPUs without NVLink or a shared PCIe switch. cudaMemcpyPeerAsync works either way,
// as on CUDA (the driver stages it then), but only between blocks of the devices it names.
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <utility>

#include "errors.h"
#include "memory.h"
#include "peer.h"
#include "streams.h"

namespace convnet::emu {

namespace {

bool peers_reach_each_other() {
    static const bool yes = [] {
        const char* s = std::getenv("CONVNET_EMU_PEER");
        return !s || std::atoi(s) != 0;
    }();
    return yes;
}

bool valid_device(int device) { return device >= 0 && device < device_count(); }

struct Enabled {
    std::mutex mutex;
    std::set<std::pair<int, int>> pairs;  // (device, peer it may access)
};
Enabled& enabled() {
    static Enabled* e = new Enabled;
    return *e;
}

// Whether [ptr, ptr + bytes) lies in one live block of `device`.
bool block_of(const void* ptr, int device, std::size_t bytes) {
    const DeviceBlock b = find_block(ptr);
    if (b.device != device) return false;
    const std::size_t offset = static_cast<std::size_t>(static_cast<const char*>(ptr) - b.begin);
    return bytes <= b.bytes - offset;
}

}  // namespace

bool peer_access_enabled(int device, int peer) {
    std::lock_guard<std::mutex> lock(enabled().mutex);
    return enabled().pairs.count({device, peer}) > 0;
}

}  // namespace convnet::emu

using namespace convnet::emu;

cudaError_t cudaDeviceCanAccessPeer(int* can_access, int device, int peer_device) {
    if (!can_access) return fail(cudaErrorInvalidValue);
    if (!valid_device(device) || !valid_device(peer_device)) return fail(cudaErrorInvalidDevice);
    *can_access = device != peer_device && peers_reach_each_other();
    return cudaSuccess;
}

cudaError_t cudaDeviceEnablePeerAccess(int peer_device, unsigned flags) {
    if (flags != 0) return fail(cudaErrorInvalidValue);
    const int device = current_device();
    if (!valid_device(peer_device) || peer_device == device) return fail(cudaErrorInvalidDevice);
    if (!peers_reach_each_other()) return fail(cudaErrorPeerAccessUnsupported);
    std::lock_guard<std::mutex> lock(enabled().mutex);
    if (!enabled().pairs.insert({device, peer_device}).second)
        return fail(cudaErrorPeerAccessAlreadyEnabled);
    return cudaSuccess;
}

cudaError_t cudaDeviceDisablePeerAccess(int peer_device) {
    std::lock_guard<std::mutex> lock(enabled().mutex);
    if (!enabled().pairs.erase({current_device(), peer_device}))
        return fail(cudaErrorPeerAccessNotEnabled);
    return cudaSuccess;
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device,
                                std::size_t bytes, cudaStream_t stream) {
    if (!valid_device(dst_device) || !valid_device(src_device)) return fail(cudaErrorInvalidDevice);
    if (stream_device(stream) < 0) return fail(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (!block_of(dst, dst_device, bytes) || !block_of(src, src_device, bytes))
        return fail(cudaErrorInvalidValue);
    const DeviceMemoryAccess open;
    std::memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr) {
    if (!attributes) return fail(cudaErrorInvalidValue);
    const DeviceBlock b = find_block(ptr);
    *attributes = cudaPointerAttributes{};
    if (b.device < 0) {
        attributes->type = cudaMemoryTypeUnregistered;
        attributes->device = -2;  // cudaInvalidDeviceId
        return cudaSuccess;
    }
    attributes->type = cudaMemoryTypeDevice;
    attributes->device = b.device;
    attributes->devicePointer = const_cast<void*>(ptr);
    return cudaSuccess;
}
