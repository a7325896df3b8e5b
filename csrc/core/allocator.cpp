// Caching allocator: best-fit reuse of released blocks, never splitting them. Sizes are rounded
// (512 bytes below 1 MiB, 2 MiB above) so that the same layer shapes map to the same blocks.
#include "core/allocator.h"

#include <cstdlib>
#include <memory>

#include "core/check.h"
#include "core/cuda_runtime.h"

namespace convnet {

namespace {
constexpr std::size_t kSmallRound = 512;
constexpr std::size_t kLargeRound = 2 << 20;
constexpr std::size_t kLargeThreshold = 1 << 20;
// A cached block may serve a request at most this many times smaller, to bound waste.
constexpr std::size_t kMaxWasteFactor = 2;
}  // namespace

std::size_t CachingAllocator::round_size(std::size_t bytes) {
    if (bytes == 0) bytes = 1;
    const std::size_t unit = bytes < kLargeThreshold ? kSmallRound : kLargeRound;
    return (bytes + unit - 1) / unit * unit;
}

CachingAllocator::~CachingAllocator() {
    // Process teardown: the CUDA context may already be gone, so only CPU blocks are freed.
    if (device_.is_cpu()) empty_cache();
}

void* CachingAllocator::system_allocate(std::size_t bytes) {
    if (device_.is_cpu()) {
        void* p = std::aligned_alloc(64, bytes);
        if (!p) throw Error(detail::concat("out of host memory allocating ", bytes, " bytes"));
        return p;
    }
#ifdef CONVNET_WITH_CUDA
    return cuda::malloc_on(device_.index, bytes);
#else
    throw Error("this convnet build has no CUDA support");
#endif
}

void CachingAllocator::system_free(void* ptr) {
    if (device_.is_cpu()) {
        std::free(ptr);
        return;
    }
#ifdef CONVNET_WITH_CUDA
    cuda::free_on(device_.index, ptr);
#endif
}

void* CachingAllocator::allocate(std::size_t bytes) {
    const std::size_t size = round_size(bytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    auto it = free_blocks_.lower_bound(size);
    void* ptr = nullptr;
    std::size_t block_size = size;
    if (it != free_blocks_.end() && it->first <= size * kMaxWasteFactor) {
        ptr = it->second;
        block_size = it->first;
        free_blocks_.erase(it);
        stats_.bytes_cached -= block_size;
        ++stats_.cache_hits;
    } else {
        try {
            ptr = system_allocate(size);
        } catch (const Error&) {
            // Out of memory: give the cache back and try once more before failing.
            for (auto& [s, p] : free_blocks_) system_free(p);
            free_blocks_.clear();
            stats_.bytes_cached = 0;
            ptr = system_allocate(size);
        }
    }
    live_blocks_[ptr] = block_size;
    stats_.bytes_in_use += block_size;
    return ptr;
}

void CachingAllocator::release(void* ptr) {
    if (!ptr) return;
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = live_blocks_.find(ptr);
    CONVNET_CHECK(it != live_blocks_.end(), "release of a block this allocator did not hand out");
    free_blocks_.emplace(it->second, ptr);
    stats_.bytes_in_use -= it->second;
    stats_.bytes_cached += it->second;
    live_blocks_.erase(it);
}

void CachingAllocator::empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& [size, ptr] : free_blocks_) system_free(ptr);
    free_blocks_.clear();
    stats_.bytes_cached = 0;
}

AllocatorStats CachingAllocator::stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

CachingAllocator& CachingAllocator::of(Device device) {
    // Leaked on purpose: tensors held by Python may outlive static destruction order.
    static std::mutex registry_mutex;
    static auto* cpu = new CachingAllocator(Device::cpu());
    static auto* gpus = new std::map<int, std::unique_ptr<CachingAllocator>>();
    if (device.is_cpu()) return *cpu;
    std::lock_guard<std::mutex> lock(registry_mutex);
    auto& slot = (*gpus)[device.index];
    if (!slot) slot = std::make_unique<CachingAllocator>(device);
    return *slot;
}

}  // namespace convnet
