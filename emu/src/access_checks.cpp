// The emulated device's checks of kernel memory accesses (see access_checks.h).
#include "access_checks.h"

#include <link.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <cuda_runtime.h>

#include "core/check.h"
#include "errors.h"
#include "fiber_stacks.h"
#include "memory.h"
#include "peer.h"

namespace convnet::emu {

thread_local BlockAccess* block_access = nullptr;

namespace {

constexpr std::size_t kWord = 4;
constexpr int kNobody = -1, kSeveral = -2;

// What the block has done to one 4-byte word of shared memory.
struct Shadow {
    std::uint64_t serial = 0;    // the block this describes; another block's is stale
    std::uint32_t interval = 0;  // the barrier interval `writer` and `reader` belong to
    int writer = kNobody;        // the thread that wrote it in that interval
    int reader = kNobody;        // the thread that read it then, or kSeveral
    bool written = false;        // written at all by this block
};

// The library's own image (code, constants, static data): kernels may read its tables.
struct Image {
    std::vector<std::pair<const char*, const char*>> segments;
    std::size_t tls_bytes = 0;
};

// Per CPU thread: where its copy of the static __shared__ arrays lies (the library's
// thread-local storage: `__shared__` is `static thread_local` here), the shadow words, and the
// device blocks found last.
struct ThreadState {
    const char* tls_begin = nullptr;
    const char* tls_end = nullptr;
    std::vector<Shadow> static_shadow, dynamic_shadow;
    DeviceBlock recent[4];
    unsigned next_recent = 0;
    std::uint64_t blocks_run = 0;
};
thread_local ThreadState state;

struct ImageSearch {
    const char* anchor;
    Image* image;
    const char* tls_data = nullptr;
};

int find_image(dl_phdr_info* info, std::size_t, void* data) {
    auto* search = static_cast<ImageSearch*>(data);
    bool mine = false;
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        const char* begin = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
        if (ph.p_type == PT_LOAD && search->anchor >= begin && search->anchor < begin + ph.p_memsz)
            mine = true;
    }
    if (!mine) return 0;
    search->image->segments.clear();
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const ElfW(Phdr)& ph = info->dlpi_phdr[i];
        const char* begin = reinterpret_cast<const char*>(info->dlpi_addr + ph.p_vaddr);
        if (ph.p_type == PT_LOAD) search->image->segments.emplace_back(begin, begin + ph.p_memsz);
        if (ph.p_type == PT_TLS) search->image->tls_bytes = ph.p_memsz;
    }
    search->tls_data = static_cast<const char*>(info->dlpi_tls_data);
    return 1;
}

// Finds the library's image, and the calling thread's thread-local storage in it (which the
// caller has touched, so that it exists).
const char* locate(Image& image) {
    ImageSearch search{reinterpret_cast<const char*>(&find_image), &image};
    dl_iterate_phdr(find_image, &search);
    return search.tls_data;
}

const Image& image() {
    static Image* i = [] {
        auto* found = new Image;
        locate(*found);
        return found;
    }();
    return *i;
}

std::string thread_name(int id) {
    const dim3& d = builtins.block_dim;
    return detail::concat("thread (", unsigned(id) % d.x, ",", unsigned(id) / d.x % d.y, ",",
                          unsigned(id) / (d.x * d.y), ") of block (", builtins.block_index.x, ",",
                          builtins.block_index.y, ",", builtins.block_index.z, ")");
}

std::string where(const char* p, const char* region_begin, bool dynamic) {
    return dynamic ? detail::concat("dynamic shared memory byte ", p - region_begin, " (",
                                    static_cast<const void*>(p), ")")
                   : detail::concat("static __shared__ memory at ",
                                    static_cast<const void*>(p));
}

void shared_access(const BlockAccess& b, int thread, std::vector<Shadow>& shadow,
                   const char* region_begin, const char* p, std::size_t size, bool write,
                   bool dynamic) {
    const std::size_t first = std::size_t(p - region_begin) / kWord;
    const std::size_t last = std::size_t(p + size - 1 - region_begin) / kWord;
    for (std::size_t w = first; w <= last && w < shadow.size(); ++w) {
        Shadow& s = shadow[w];
        if (s.serial != b.serial) s = Shadow{b.serial, b.interval};
        if (s.interval != b.interval) s.interval = b.interval, s.writer = s.reader = kNobody;
        const char* word = region_begin + w * kWord;
        if (s.writer != kNobody && s.writer != thread)
            kernel_error(b.kernel, detail::concat("shared-memory race on ", where(word, region_begin, dynamic),
                                     ": ", thread_name(thread), write ? " writes" : " reads",
                                     " it after ", thread_name(s.writer),
                                     " wrote it, with no __syncthreads between"));
        if (write) {
            if (s.reader == kSeveral || (s.reader != kNobody && s.reader != thread))
                kernel_error(b.kernel, detail::concat(
                              "shared-memory race on ", where(word, region_begin, dynamic), ": ",
                              thread_name(thread), " writes it after ",
                              s.reader == kSeveral ? std::string("other threads")
                                                   : thread_name(s.reader),
                              " read it, with no __syncthreads between"));
            s.writer = thread;
            s.written = true;
        } else {
            if (!s.written)
                kernel_error(b.kernel, detail::concat(thread_name(thread), " reads ",
                                         where(word, region_begin, dynamic),
                                         " before any thread of the block wrote it"));
            s.reader = s.reader == kNobody || s.reader == thread ? thread : kSeveral;
        }
    }
}

bool in_image(const char* p) {
    for (const auto& [begin, end] : image().segments)
        if (p >= begin && p < end) return true;
    return false;
}

void device_access(const BlockAccess& b, int thread, const char* p, std::size_t size,
                   bool write) {
    ThreadState& t = *static_cast<ThreadState*>(b.thread_state);
    const DeviceBlock* hit = nullptr;
    for (const DeviceBlock& r : t.recent)
        if (p >= r.begin && p < r.begin + r.bytes) hit = &r;
    DeviceBlock found;
    if (!hit) {
        found = find_block(p);
        if (found.device >= 0) {
            t.recent[t.next_recent++ % 4] = found;
            hit = &found;
        }
    }
    const char* verb = write ? " writes " : " reads ";
    if (hit) {
        if (p + size > hit->begin + hit->bytes)
            kernel_error(b.kernel, detail::concat(thread_name(thread), verb, size, " bytes at ",
                                     static_cast<const void*>(p), ", which run past the end of a ",
                                     hit->bytes, "-byte device block"));
        if (hit->device != b.device && !peer_access_enabled(b.device, hit->device))
            kernel_error(b.kernel, detail::concat(thread_name(thread), verb, "memory of cuda:", hit->device,
                                     " at ", static_cast<const void*>(p),
                                     ", but the kernel runs on cuda:", b.device,
                                     " without peer access to it"));
        return;
    }
    if (in_arena(p)) {
        const DeviceBlock before = block_before(p);
        if (before.device >= 0)
            kernel_error(b.kernel, detail::concat(thread_name(thread), verb, "device memory at ",
                                     static_cast<const void*>(p), ", ",
                                     p - (before.begin + before.bytes),
                                     " bytes past the end of a ", before.bytes,
                                     "-byte block on cuda:", before.device, " (out of bounds)"));
        kernel_error(b.kernel, detail::concat(thread_name(thread), verb, "device memory at ",
                                 static_cast<const void*>(p), " that no live block holds (freed)"));
    }
    if (in_image(p)) return;
    if (b.dynamic_end && p >= b.dynamic_end && p < b.dynamic_end + 65536)
        kernel_error(b.kernel, detail::concat(thread_name(thread), verb, "dynamic shared memory ",
                                 p - b.dynamic_end, " bytes past its end (the launch gave ",
                                 b.dynamic_end - b.dynamic_begin, " bytes)"));
    kernel_error(b.kernel, detail::concat(thread_name(thread), verb, "host memory at ",
                             static_cast<const void*>(p),
                             ": a kernel can only reach device memory (a host pointer given "
                             "to a kernel?)"));
}

void check(const FiberTag& tag, const void* address, std::size_t size, bool write) {
    const BlockAccess& b = *tag.access;
    const char* p = static_cast<const char*>(address);
    const char* stack = reinterpret_cast<const char*>(&tag + 1) - kFiberStackBytes;
    if (p >= stack && p < stack + kFiberStackBytes) return;  // the thread's own locals
    if (p >= b.exchange_begin && p < b.exchange_end) return;
    ThreadState& t = *static_cast<ThreadState*>(b.thread_state);
    if (p >= t.tls_begin && p < t.tls_end) {
        const char* builtin = reinterpret_cast<const char*>(&builtins);
        if (p >= builtin && p < builtin + sizeof builtins) return;  // threadIdx and friends
        shared_access(b, tag.thread, t.static_shadow, t.tls_begin, p, size, write, false);
        return;
    }
    if (p >= b.dynamic_begin && p < b.dynamic_end) {
        shared_access(b, tag.thread, t.dynamic_shadow, b.dynamic_begin, p, size, write, true);
        return;
    }
    device_access(b, tag.thread, p, size, write);
}

// What every instrumentation hook does: check the access if the caller runs on a checked fiber
// (host code in kernels/*.cu is instrumented too, and returns here at once).
inline void on_access(void* address, std::size_t size, bool write) {
    const FiberTag* tag = fiber_tag(__builtin_frame_address(0));
    if (tag && tag->access) check(*tag, address, size, write);
}

}  // namespace

bool access_checks_enabled() {
#if defined(CONVNET_EMU_ACCESS_CHECKS)
    static const bool on = [] {
        const char* s = std::getenv("CONVNET_EMU_CHECKS");
        return !(s && std::strcmp(s, "0") == 0);
    }();
    return on;
#else
    return false;
#endif
}

CheckedBlock::CheckedBlock(const char* kernel, int device, const void* dynamic_shared,
                           std::size_t dynamic_bytes) {
    if (!access_checks_enabled()) return;
    ThreadState& t = state;
    if (!t.tls_begin) {  // `state` is thread-local, so this thread's storage exists by now
        Image scratch;
        t.tls_begin = locate(scratch);
        t.tls_end = t.tls_begin ? t.tls_begin + scratch.tls_bytes : nullptr;
        t.static_shadow.resize(scratch.tls_bytes / kWord + 1);
    }
    state_.kernel = kernel;
    state_.device = device;
    state_.dynamic_begin = static_cast<const char*>(dynamic_shared);
    state_.dynamic_end = state_.dynamic_begin + dynamic_bytes;
    state_.serial = ++t.blocks_run;
    state_.thread_state = &t;
    if (t.dynamic_shadow.size() < dynamic_bytes / kWord + 1)
        t.dynamic_shadow.resize(dynamic_bytes / kWord + 1);
    for (DeviceBlock& r : t.recent) r = DeviceBlock{};  // blocks may have been freed since
    block_access = &state_;
}

CheckedBlock::~CheckedBlock() { block_access = nullptr; }

void check_pointer_argument(const char* kernel, int position, const void* pointer) {
    if (!pointer) return;
    const DeviceBlock b = find_block(pointer);
    const DeviceBlock before = b.device >= 0 ? b : block_before(pointer);
    const bool one_past_end = before.device >= 0 && pointer == before.begin + before.bytes;
    const int device = current_device();
    if (b.device < 0 && !one_past_end)
        throw Error(detail::concat("emulated device: kernel ", kernel, ": argument ", position,
                                   " (", pointer, ") is not device memory",
                                   in_arena(pointer) ? " (freed or out of bounds)"
                                                     : " (a host pointer)"));
    if (before.device != device && !peer_access_enabled(device, before.device))
        throw Error(detail::concat("emulated device: kernel ", kernel, " launched on cuda:",
                                   device, ": argument ", position, " points to memory of cuda:",
                                   before.device,
                                   " without peer access to it (a missing device guard?)"));
}

}  // namespace convnet::emu

// The instrumentation's entry points, in the build whose kernels call them.
#if defined(CONVNET_EMU_ACCESS_CHECKS)
using convnet::emu::on_access;

#define CONVNET_EMU_ACCESS_HOOKS(bytes)                                                   \
    extern "C" void __tsan_read##bytes(void* p) { on_access(p, bytes, false); }           \
    extern "C" void __tsan_write##bytes(void* p) { on_access(p, bytes, true); }           \
    extern "C" void __tsan_unaligned_read##bytes(void* p) { on_access(p, bytes, false); } \
    extern "C" void __tsan_unaligned_write##bytes(void* p) { on_access(p, bytes, true); }
CONVNET_EMU_ACCESS_HOOKS(1)
CONVNET_EMU_ACCESS_HOOKS(2)
CONVNET_EMU_ACCESS_HOOKS(4)
CONVNET_EMU_ACCESS_HOOKS(8)
CONVNET_EMU_ACCESS_HOOKS(16)
#undef CONVNET_EMU_ACCESS_HOOKS

extern "C" {
void __tsan_read_range(void* p, long bytes) {
    if (bytes > 0) on_access(p, std::size_t(bytes), false);
}
void __tsan_write_range(void* p, long bytes) {
    if (bytes > 0) on_access(p, std::size_t(bytes), true);
}
void __tsan_init() {}
void __tsan_func_entry(void*) {}
void __tsan_func_exit(void*) {}
void __tsan_vptr_update(void* vptr, void* value) { *static_cast<void**>(vptr) = value; }
void __tsan_vptr_read(void*) {}
// Atomics in the host code of kernels/*.cu (static-local guards, per-device caches): done
// sequentially consistent, whatever order the call asks for.
unsigned char __tsan_atomic8_load(const volatile void* a, int) {
    return __atomic_load_n(static_cast<const volatile unsigned char*>(a), __ATOMIC_SEQ_CST);
}
void __tsan_atomic8_store(volatile void* a, unsigned char v, int) {
    __atomic_store_n(static_cast<volatile unsigned char*>(a), v, __ATOMIC_SEQ_CST);
}
unsigned __tsan_atomic32_load(const volatile void* a, int) {
    return __atomic_load_n(static_cast<const volatile unsigned*>(a), __ATOMIC_SEQ_CST);
}
void __tsan_atomic32_store(volatile void* a, unsigned v, int) {
    __atomic_store_n(static_cast<volatile unsigned*>(a), v, __ATOMIC_SEQ_CST);
}
}
#endif  // CONVNET_EMU_ACCESS_CHECKS
