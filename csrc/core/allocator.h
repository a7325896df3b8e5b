// A caching allocator, one per device. Freed blocks go to a free list keyed by their rounded size
// and are handed out again, so a training step allocates nothing after its first run
// (docs/design.md, "Memory"). Blocks are 64-byte aligned on the CPU (AVX-512 loads, no false
// sharing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/device.h"

namespace convnet {

struct AllocatorStats {
    std::size_t bytes_in_use = 0;   // handed out and not yet released
    std::size_t bytes_cached = 0;   // released and kept for reuse
    std::uint64_t allocations = 0;  // calls to allocate()
    std::uint64_t cache_hits = 0;   // allocate() served from the free lists
};

class CachingAllocator {
public:
    explicit CachingAllocator(Device device) : device_(device) {}
    ~CachingAllocator();
    CachingAllocator(const CachingAllocator&) = delete;
    CachingAllocator& operator=(const CachingAllocator&) = delete;

    void* allocate(std::size_t bytes);
    void release(void* ptr);
    // Returns every cached block to the system (cudaFree / free).
    void empty_cache();
    AllocatorStats stats() const;

    // The process-wide allocator of a device.
    static CachingAllocator& of(Device device);

private:
    static std::size_t round_size(std::size_t bytes);
    void* system_allocate(std::size_t bytes);
    void system_free(void* ptr);

    Device device_;
    mutable std::mutex mutex_;
    std::multimap<std::size_t, void*> free_blocks_;       // rounded size -> block
    std::unordered_map<void*, std::size_t> live_blocks_;  // block -> rounded size
    AllocatorStats stats_;
};

}  // namespace convnet
