// The fibers' stacks: slots of one reserved address range, each aligned to its size, with a tag
// at its top that says which checked block and thread run on it. Code running on a fiber finds
// its tag from the stack pointer alone, without a thread-local lookup (access_checks.cpp does
// this on every instrumented load and store).
#pragma once

#include <cstddef>
#include <cstdint>

namespace convnet::emu {

struct BlockAccess;

constexpr std::size_t kFiberStackBytes = 256 * 1024;  // small kernel frames; mapped lazily

struct FiberTag {
    BlockAccess* access = nullptr;  // the checked block running on this stack, if any
    int thread = -1;                // linear index of the thread this stack carries
};

struct FiberStackRange {
    std::uintptr_t begin = 0, bytes = 0;
};
extern FiberStackRange fiber_stack_range;

// A new stack: [base, base + kFiberStackBytes), the lowest page a guard, the tag at the top.
char* new_fiber_stack();
inline FiberTag* tag_of_stack(char* base) {
    return reinterpret_cast<FiberTag*>(base + kFiberStackBytes) - 1;
}
// The tag of the fiber whose stack holds `sp`, or nullptr when `sp` is on no fiber's stack.
inline FiberTag* fiber_tag(const void* sp) {
    const std::uintptr_t p = reinterpret_cast<std::uintptr_t>(sp);
    if (p - fiber_stack_range.begin >= fiber_stack_range.bytes) return nullptr;
    return tag_of_stack(reinterpret_cast<char*>(p & ~std::uintptr_t(kFiberStackBytes - 1)));
}

}  // namespace convnet::emu
