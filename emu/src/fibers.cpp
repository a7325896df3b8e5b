// Fibers for the emulated device's blocks (see fibers.h). A context switch saves the callee-saved
// registers and the floating-point control words on the fiber's own stack and swaps stack
// pointers: no system call, so a barrier costs a few nanoseconds per thread.
#include "fibers.h"

#include <cstring>
#include <exception>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

#include "access_checks.h"
#include "core/check.h"
#include "errors.h"
#include "fiber_stacks.h"

#if !defined(__x86_64__)
#error "the emulated CUDA device needs an x86-64 host (its fiber switch is x86-64 assembly)"
#endif

extern "C" {
void convnet_emu_switch(void** save_sp, void* load_sp);
void convnet_emu_trampoline();
void convnet_emu_fiber_main(void* fiber);
}

// convnet_emu_switch(save_sp, load_sp): pushes rbp, rbx, r12-r15 and MXCSR/x87 control word,
// stores rsp in *save_sp, loads load_sp and pops the same from there. A new fiber's stack is laid
// out so that the pops end in convnet_emu_trampoline with its Fiber* in r12.
asm(R"(
    .text
    .globl convnet_emu_switch
    .hidden convnet_emu_switch
    .type convnet_emu_switch, @function
convnet_emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size convnet_emu_switch, .-convnet_emu_switch

    .globl convnet_emu_trampoline
    .hidden convnet_emu_trampoline
    .type convnet_emu_trampoline, @function
convnet_emu_trampoline:
    subq $8, %rsp
    movq %r12, %rdi
    call convnet_emu_fiber_main
    ud2
    .size convnet_emu_trampoline, .-convnet_emu_trampoline
)");

namespace convnet::emu {

namespace {

constexpr unsigned kWarp = 32;

struct Block;

struct Fiber {
    Block* block = nullptr;
    char* stack = nullptr;
    unsigned id = 0;  // linear thread index in the block
    uint3 index{};
    void* sp = nullptr;
    bool done = false, waiting = false;
    std::uint64_t wait_generation = 0;  // the barrier (or warp exchange) generation it waits on
    bool waits_on_warp = false;
};

struct Warp {
    unsigned arrived = 0, expected = 0;
    std::uint64_t generation = 0;
    // Each lane's contribution to the current exchange, double-buffered by generation: a lane
    // cannot start the exchange after next before every lane has read this one.
    unsigned char slots[2][kWarp][kWarpPayloadBytes] = {};
};

struct Block {
    const std::function<void()>* body = nullptr;
    const char* kernel = "";
    unsigned threads = 0, alive = 0, arrived = 0;
    std::uint64_t generation = 0;
    std::vector<Fiber> fibers;
    std::vector<Warp> warps;
    void* scheduler_sp = nullptr;
    const void* scheduler_stack = nullptr;  // its bounds, for AddressSanitizer's fiber switches
    std::size_t scheduler_stack_bytes = 0;
    Fiber* current = nullptr;
    std::exception_ptr error;
};

// Stacks are kept per CPU thread and reused by every block that thread runs.
thread_local std::vector<char*> stacks;
thread_local Block* running = nullptr;

std::string thread_name(const Fiber& f) {
    return detail::concat("thread (", f.index.x, ",", f.index.y, ",", f.index.z, ")");
}

// Under AddressSanitizer every stack switch is announced (start) and completed (finish), or it
// takes the fibers' frames for overflows; elsewhere these are no-ops.
#if defined(__SANITIZE_ADDRESS__)
void start_switch(void** fake_stack, const void* bottom, std::size_t bytes) {
    __sanitizer_start_switch_fiber(fake_stack, bottom, bytes);
}
void finish_switch(void* fake_stack, const void** bottom, std::size_t* bytes) {
    __sanitizer_finish_switch_fiber(fake_stack, bottom, bytes);
}
#else
void start_switch(void**, const void*, std::size_t) {}
void finish_switch(void*, const void**, std::size_t*) {}
#endif

void to_scheduler(Block& b, Fiber& f, bool finished) {
    void* fake_stack = nullptr;
    start_switch(finished ? nullptr : &fake_stack, b.scheduler_stack, b.scheduler_stack_bytes);
    convnet_emu_switch(&f.sp, b.scheduler_sp);
    finish_switch(fake_stack, nullptr, nullptr);
}

void to_fiber(Block& b, Fiber& f) {
    void* fake_stack = nullptr;
    start_switch(&fake_stack, f.stack, kFiberStackBytes);
    convnet_emu_switch(&b.scheduler_sp, f.sp);
    finish_switch(fake_stack, nullptr, nullptr);
}

void yield(Block& b, Fiber& f) { to_scheduler(b, f, false); }

void* initial_stack(char* stack, Fiber* f) {
    // Top 16-byte aligned; after the switch's pops and ret the trampoline sees rsp % 16 == 8, as
    // a function just called does.
    auto top = reinterpret_cast<std::uintptr_t>(tag_of_stack(stack)) & ~std::uintptr_t(15);
    auto* p = reinterpret_cast<std::uint64_t*>(top);
    *--p = 0;                                                          // alignment filler
    *--p = reinterpret_cast<std::uint64_t>(&convnet_emu_trampoline);   // ret target
    *--p = 0;                                                          // rbp
    *--p = 0;                                                          // rbx
    *--p = reinterpret_cast<std::uint64_t>(f);                         // r12: the fiber
    *--p = 0;                                                          // r13
    *--p = 0;                                                          // r14
    *--p = 0;                                                          // r15
    std::uint32_t csr = 0;
    std::uint16_t cw = 0;
    asm volatile("stmxcsr %0" : "=m"(csr));
    asm volatile("fnstcw %0" : "=m"(cw));
    std::uint64_t control = 0;
    std::memcpy(&control, &csr, 4);
    std::memcpy(reinterpret_cast<char*>(&control) + 4, &cw, 2);
    *--p = control;
    return p;
}

}  // namespace

}  // namespace convnet::emu

extern "C" void convnet_emu_fiber_main(void* fiber) {
    using namespace convnet::emu;
    auto* f = static_cast<Fiber*>(fiber);
    Block& b = *f->block;
    finish_switch(nullptr, &b.scheduler_stack, &b.scheduler_stack_bytes);
    try {
        (*b.body)();
        if (b.arrived > 0)
            kernel_error(b.kernel, thread_name(*f) + " returned while other threads of its block wait at "
                          "__syncthreads (a barrier reached by part of the block)");
    } catch (...) {
        if (!b.error) b.error = std::current_exception();
    }
    f->done = true;
    --b.alive;
    to_scheduler(b, *f, true);
    __builtin_unreachable();
}

namespace convnet::emu {

void run_block(const dim3& dims, const char* kernel, const std::function<void()>& thread_body) {
    Block b;
    b.body = &thread_body;
    b.kernel = kernel;
    b.threads = b.alive = dims.x * dims.y * dims.z;
    b.fibers.resize(b.threads);
    b.warps.resize((b.threads + kWarp - 1) / kWarp);
    while (stacks.size() < b.threads) stacks.push_back(new_fiber_stack());
    for (unsigned i = 0; i < b.threads; ++i) {
        Fiber& f = b.fibers[i];
        f.block = &b, f.id = i;
        f.index = uint3{i % dims.x, i / dims.x % dims.y, i / (dims.x * dims.y)};
        f.stack = stacks[i];
        f.sp = initial_stack(stacks[i], &f);
        *tag_of_stack(stacks[i]) = FiberTag{block_access, int(i)};
    }
    if (block_access) {
        block_access->exchange_begin = reinterpret_cast<const char*>(b.warps.data());
        block_access->exchange_end = reinterpret_cast<const char*>(b.warps.data() + b.warps.size());
    }
    Block* outer = running;
    running = &b;
    while (b.alive > 0 && !b.error) {
        bool ran = false;
        for (Fiber& f : b.fibers) {
            if (f.done) continue;
            if (f.waiting) {
                const std::uint64_t now =
                    f.waits_on_warp ? b.warps[f.id / kWarp].generation : b.generation;
                if (now == f.wait_generation) continue;
                f.waiting = false;
            }
            b.current = &f;
            builtins.thread_index = f.index;
            to_fiber(b, f);
            ran = true;
            if (b.error) break;
        }
        if (!ran && !b.error) {
            running = outer;
            kernel_error(b.kernel, detail::concat(b.alive, " threads wait forever (at __syncthreads or a "
                                              "warp shuffle that not every thread reaches)"));
        }
    }
    running = outer;
    // Fibers abandoned by an error never resume; their stacks are reused by the next block.
    if (b.error) std::rethrow_exception(b.error);
}

void block_barrier() {
    Block& b = *running;
    Fiber& f = *b.current;
    if (b.alive < b.threads)
        kernel_error(b.kernel, thread_name(f) + " reached __syncthreads after other threads of its block "
                                   "returned (a barrier reached by part of the block)");
    if (++b.arrived == b.threads) {  // the last one releases the others and goes on
        b.arrived = 0;
        ++b.generation;
        if (block_access) ++block_access->interval;
        return;
    }
    f.waiting = true, f.waits_on_warp = false, f.wait_generation = b.generation;
    yield(b, f);
}

const void* warp_exchange(unsigned mask, const void* mine, std::size_t bytes, const char* what) {
    Block& b = *running;
    Fiber& f = *b.current;
    const unsigned lane = f.id % kWarp, first = f.id - lane;
    const unsigned lanes = std::min<unsigned>(kWarp, b.threads - first);  // lanes that exist
    const unsigned present = lanes == kWarp ? 0xffffffffu : (1u << lanes) - 1u;
    if (!(mask >> lane & 1u))
        kernel_error(b.kernel, detail::concat(thread_name(f), " calls ", what,
                                 " with a mask that leaves out its lane"));
    if ((mask & present) != mask)
        kernel_error(b.kernel, detail::concat(what, " mask 0x", std::hex, mask,
                                 " names lanes that its warp does not have"));
    Warp& w = b.warps[f.id / kWarp];
    const std::uint64_t generation = w.generation;
    auto& slots = w.slots[generation & 1];
    std::memcpy(slots[lane], mine, bytes);
    if (w.arrived == 0) w.expected = unsigned(__builtin_popcount(mask));
    if (++w.arrived == w.expected) {
        w.arrived = 0;
        ++w.generation;
    } else {
        f.waiting = true, f.waits_on_warp = true, f.wait_generation = generation;
        yield(b, f);
    }
    return slots;
}

std::uint64_t warp_shuffle_xor(unsigned mask, std::uint64_t bits, int lane_mask, int width) {
    if (width < 1 || width > int(kWarp) || (width & (width - 1)))
        kernel_error(running->kernel, detail::concat("__shfl_xor_sync width ", width,
                                        " is not a power of 2 <= 32"));
    const auto* slots = static_cast<const unsigned char(*)[kWarpPayloadBytes]>(
        warp_exchange(mask, &bits, sizeof bits, "__shfl_xor_sync"));
    const unsigned lane = running->current->id % kWarp;
    // The source lane lane ^ lane_mask, if it lies in this lane's segment of `width` lanes and in
    // the mask; otherwise the lane keeps its own value (as shfl.sync.bfly does).
    const unsigned segment = lane & ~unsigned(width - 1);
    const unsigned source = lane ^ unsigned(lane_mask);
    const bool inside = (source & ~unsigned(width - 1)) == segment && source < kWarp;
    if (!inside || !(mask >> source & 1u)) return bits;
    std::uint64_t value;
    std::memcpy(&value, slots[source], sizeof value);
    return value;
}

}  // namespace convnet::emu
