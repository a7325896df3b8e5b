// The fibers' stack slots (see fiber_stacks.h): reserved once, handed out one by one, kept for
// the life of the process (each CPU thread reuses its own from block to block).
#include "fiber_stacks.h"

#include <sys/mman.h>

#include <mutex>

#include "core/check.h"

namespace convnet::emu {

namespace {
constexpr std::size_t kSlots = 64 * 1024;  // 16 GB of address space, mapped only when handed out
constexpr std::size_t kGuard = 4096;
std::mutex slots_mutex;
std::size_t slots_used = 0;
}  // namespace

FiberStackRange fiber_stack_range;

char* new_fiber_stack() {
    std::lock_guard<std::mutex> lock(slots_mutex);
    if (!fiber_stack_range.begin) {
        const std::size_t bytes = kSlots * kFiberStackBytes;
        void* p = mmap(nullptr, bytes + kFiberStackBytes, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        CONVNET_CHECK(p != MAP_FAILED, "emulated device: cannot reserve fiber stacks");
        const std::uintptr_t aligned = (reinterpret_cast<std::uintptr_t>(p) + kFiberStackBytes - 1) &
                                       ~std::uintptr_t(kFiberStackBytes - 1);
        fiber_stack_range = FiberStackRange{aligned, bytes};
    }
    CONVNET_CHECK(slots_used < kSlots, "emulated device: out of fiber stacks");
    char* base = reinterpret_cast<char*>(fiber_stack_range.begin) + slots_used++ * kFiberStackBytes;
    // The guard page stays inaccessible: an overflow faults instead of corrupting memory.
    CONVNET_CHECK(mprotect(base + kGuard, kFiberStackBytes - kGuard, PROT_READ | PROT_WRITE) == 0,
                  "emulated device: cannot map a fiber stack");
    *tag_of_stack(base) = FiberTag{};
    return base;
}

}  // namespace convnet::emu
