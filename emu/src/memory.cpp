// The emulated device's memory arena (see memory.h). Blocks are carved first-fit out of one
// PROT_NONE reservation; opening the arena makes everything below its high-water mark readable
// and writable, closing it takes that away again, so the cost is one mprotect per kernel or copy.
#include "memory.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <map>
#include <mutex>

#include "core/check.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace convnet::emu {

namespace {

constexpr std::size_t kPage = 4096;
constexpr std::size_t kArenaBytes = std::size_t(64) << 30;  // address space, not memory

struct Live {
    std::size_t bytes, pages;  // requested bytes; pages reserved, guard page included
    int device;
};

struct Arena {
    std::mutex mutex;
    char* base = nullptr;
    std::size_t high_water = 0;               // bytes of the arena ever handed out
    std::map<std::size_t, std::size_t> free;  // offset -> pages, coalesced
    std::map<std::size_t, Live> live;         // offset -> block
    int open_count = 0;
    struct sigaction previous_segv {};

    Arena() {
        void* p = mmap(nullptr, kArenaBytes, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        CONVNET_CHECK(p != MAP_FAILED, "emulated device: cannot reserve ", kArenaBytes,
                      " bytes of address space for device memory");
        base = static_cast<char*>(p);
        free[0] = kArenaBytes / kPage;
        install_fault_handler();
    }

    void protect(int prot) {
        if (high_water) mprotect(base, high_water, prot);
    }

    void install_fault_handler();
};

Arena& arena() {
    static Arena* a = new Arena;  // never destroyed: blocks may be freed during interpreter exit
    return *a;
}

// A fault on arena memory outside any kernel or copy: host code followed a device pointer. The
// message names the block; then the previous handler (Python's faulthandler under pytest, which
// prints the Python stack) or the default action takes the re-raised fault.
void on_fault(int signal, siginfo_t* info, void* context) {
    Arena& a = arena();
    const char* addr = static_cast<const char*>(info->si_addr);
    if (addr >= a.base && addr < a.base + kArenaBytes) {
        char message[320];
        const DeviceBlock b = find_block(addr);
        const int n = b.device >= 0
            ? std::snprintf(message, sizeof message,
                            "convnet emulated device: host code dereferenced device memory at %p "
                            "(byte %zu of a %zu-byte block on cuda:%d): a device pointer used on "
                            "the host, which faults on a GPU too\n",
                            static_cast<const void*>(addr), std::size_t(addr - b.begin), b.bytes,
                            b.device)
            : std::snprintf(message, sizeof message,
                            "convnet emulated device: access to device memory at %p outside any "
                            "live block (freed, or past a block's end)\n",
                            static_cast<const void*>(addr));
        if (n > 0) (void)!write(2, message, std::size_t(n));
    }
    sigaction(SIGSEGV, &a.previous_segv, nullptr);
    (void)signal, (void)context;  // returning re-runs the access under the previous handler
}

void Arena::install_fault_handler() {
    struct sigaction action {};
    action.sa_sigaction = on_fault;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&action.sa_mask);
    sigaction(SIGSEGV, &action, &previous_segv);
}

std::size_t pages_for(std::size_t bytes) { return (bytes + kPage - 1) / kPage + 1; }

// Under AddressSanitizer a block's slack and guard page are poisoned, so instrumented code that
// runs past the block's end is reported there (the access checks do this in the default build).
void poison(const char* begin, std::size_t bytes, bool poisoned) {
#if defined(__SANITIZE_ADDRESS__)
    if (poisoned)
        ASAN_POISON_MEMORY_REGION(begin, bytes);
    else
        ASAN_UNPOISON_MEMORY_REGION(begin, bytes);
#else
    (void)begin, (void)bytes, (void)poisoned;
#endif
}

}  // namespace

void* device_alloc(int device, std::size_t bytes) {
    Arena& a = arena();
    const std::size_t pages = pages_for(bytes);
    std::lock_guard<std::mutex> lock(a.mutex);
    for (auto it = a.free.begin(); it != a.free.end(); ++it) {
        if (it->second < pages) continue;
        const std::size_t offset = it->first, rest = it->second - pages;
        a.free.erase(it);
        if (rest) a.free[offset + pages * kPage] = rest;
        a.live[offset] = Live{bytes, pages, device};
        poison(a.base + offset, bytes, false);
        poison(a.base + offset + bytes, pages * kPage - bytes, true);
        const std::size_t end = offset + pages * kPage;
        if (end > a.high_water) {
            // Pages newly under the high-water mark take the arena's current state.
            if (a.open_count > 0)
                mprotect(a.base + a.high_water, end - a.high_water, PROT_READ | PROT_WRITE);
            a.high_water = end;
        }
        return a.base + offset;
    }
    return nullptr;
}

bool device_free(void* ptr) {
    Arena& a = arena();
    std::lock_guard<std::mutex> lock(a.mutex);
    const auto it = a.live.find(std::size_t(static_cast<char*>(ptr) - a.base));
    if (static_cast<char*>(ptr) < a.base || it == a.live.end()) return false;
    std::size_t offset = it->first, pages = it->second.pages;
    a.live.erase(it);
    madvise(a.base + offset, pages * kPage, MADV_DONTNEED);  // give the memory back
    poison(a.base + offset, pages * kPage, true);            // use after free
    // Coalesce with the free ranges on either side.
    auto next = a.free.lower_bound(offset);
    if (next != a.free.end() && offset + pages * kPage == next->first) {
        pages += next->second;
        next = a.free.erase(next);
    }
    if (next != a.free.begin()) {
        const auto prev = std::prev(next);
        if (prev->first + prev->second * kPage == offset) {
            prev->second += pages;
            return true;
        }
    }
    a.free[offset] = pages;
    return true;
}

namespace {
DeviceBlock block_at_or_before(const void* ptr, bool within) {
    Arena& a = arena();
    const char* p = static_cast<const char*>(ptr);
    if (p < a.base || p >= a.base + kArenaBytes) return {};
    std::lock_guard<std::mutex> lock(a.mutex);
    auto it = a.live.upper_bound(std::size_t(p - a.base));
    if (it == a.live.begin()) return {};
    --it;
    const DeviceBlock b{a.base + it->first, it->second.bytes, it->second.device};
    if (within && p >= b.begin + b.bytes) return {};
    return b;
}
}  // namespace

DeviceBlock find_block(const void* ptr) { return block_at_or_before(ptr, true); }
DeviceBlock block_before(const void* ptr) { return block_at_or_before(ptr, false); }

bool in_arena(const void* ptr) {
    const char* p = static_cast<const char*>(ptr);
    return p >= arena().base && p < arena().base + kArenaBytes;
}

DeviceMemoryAccess::DeviceMemoryAccess() {
    Arena& a = arena();
    std::lock_guard<std::mutex> lock(a.mutex);
    if (a.open_count++ == 0) a.protect(PROT_READ | PROT_WRITE);
}

DeviceMemoryAccess::~DeviceMemoryAccess() {
    Arena& a = arena();
    std::lock_guard<std::mutex> lock(a.mutex);
    if (--a.open_count == 0) a.protect(PROT_NONE);
}

}  // namespace convnet::emu
