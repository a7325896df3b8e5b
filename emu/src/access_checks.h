// Checks of every memory access a kernel makes on the emulated device. kernels/*.cu are compiled
// with the compiler's ThreadSanitizer instrumentation (-fsanitize=thread), which calls
// __tsan_read4(addr), __tsan_write16(addr) ... before each load and store; access_checks.cpp
// defines those functions itself (as the Linux kernel's KCSAN does) instead of linking the TSan
// runtime, and checks, for the kernel the calling CPU thread is running:
//   - shared memory (static __shared__ and dynamic): a race between two threads of the block
//     (the same 4-byte word touched by two of them between two barriers, at least one writing),
//     and a read of a word that no thread of the block has written yet;
//   - device memory: the access lies inside a live block (cudaMalloc) of the kernel's device,
//     so reads past a tile edge, freed memory and pointers from another device are errors;
//   - anything else must be the thread's own stack or the library's static data: a host pointer
//     is an error.
// Each error is a convnet::Error naming the kernel, the thread and the address.
#pragma once

#include <cstddef>
#include <cstdint>

namespace convnet::emu {

// What the checks know of the block the calling CPU thread is running.
struct BlockAccess {
    const char* kernel = "";
    int device = 0;
    const char* dynamic_begin = nullptr;  // the block's dynamic shared memory
    const char* dynamic_end = nullptr;
    std::uint64_t serial = 0;    // unique per block, so shadow state of earlier blocks is stale
    std::uint32_t interval = 0;  // barriers the block has passed (set by the fibers)
    const char* exchange_begin = nullptr;  // the block's warp-exchange buffers (the emulator's
    const char* exchange_end = nullptr;    // own, read by the emulated mma.sync)
    void* thread_state = nullptr;          // access_checks.cpp's per-CPU-thread state
};

// Non-null while the calling CPU thread runs a block whose accesses are checked. The fibers copy
// it into their stacks' tags (fiber_stacks.h), where the instrumented accesses find it.
extern thread_local BlockAccess* block_access;

// Starts checking the accesses of a block on the calling CPU thread for the object's lifetime.
class CheckedBlock {
public:
    CheckedBlock(const char* kernel, int device, const void* dynamic_shared,
                 std::size_t dynamic_bytes);
    ~CheckedBlock();
    CheckedBlock(const CheckedBlock&) = delete;
    CheckedBlock& operator=(const CheckedBlock&) = delete;

private:
    BlockAccess state_;
};

// Whether the kernels were built with the access checks and CONVNET_EMU_CHECKS is not 0.
bool access_checks_enabled();

}  // namespace convnet::emu
