// Device memory of the emulated CUDA device. Every device allocation lives in one reserved
// address range (the arena), page-aligned and followed by an unmapped guard page, and the whole
// arena is inaccessible to the host except while an emulated kernel or copy runs: host code that
// dereferences a device pointer faults, and the fault is reported as exactly that, as on a GPU.
#pragma once

#include <cstddef>

namespace convnet::emu {

struct DeviceBlock {
    const char* begin = nullptr;
    std::size_t bytes = 0;  // as requested (the block's pages may hold more)
    int device = -1;
};

// A new block of `bytes` on `device`; nullptr when the arena is full.
void* device_alloc(int device, std::size_t bytes);
// Frees a block by its start; false when `ptr` starts no live block.
bool device_free(void* ptr);
// The live block holding `ptr` (within its requested bytes), or a block with device -1.
DeviceBlock find_block(const void* ptr);
// The live block that starts nearest below `ptr` (for out-of-bounds messages), or device -1.
DeviceBlock block_before(const void* ptr);
// Whether `ptr` lies in the arena at all (a live block, its slack or guard, or freed memory).
bool in_arena(const void* ptr);

// Opens the arena to the host for the lifetime of the object (nested and thread-safe): emulated
// kernels and copies run inside one.
class DeviceMemoryAccess {
public:
    DeviceMemoryAccess();
    ~DeviceMemoryAccess();
    DeviceMemoryAccess(const DeviceMemoryAccess&) = delete;
    DeviceMemoryAccess& operator=(const DeviceMemoryAccess&) = delete;
};

// The calling thread's current device (cudaSetDevice) and the number of devices.
int current_device();
int device_count();

}  // namespace convnet::emu
