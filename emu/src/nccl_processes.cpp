// Emulated NCCL communicators across processes (nccl_processes.h). The segment holds a header
// (the rank count, which ranks joined, an abort flag, a barrier counter and each rank's call
// signature) and one slot of kSlotBytes per rank. An all-reduce goes in chunks of a slot: every
// rank copies its chunk in, all meet, every rank sums the slots in rank order into its output,
// all meet again. Waits spin briefly, then nap, and end early when a rank aborts.
#include "nccl_processes.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "memory.h"

namespace convnet::emu::nccl {

using namespace convnet::nccl;   // NCCL's result codes and types (csrc/comm/nccl.h)

namespace {

constexpr int kMaxRanks = 256;
constexpr std::size_t kHeaderBytes = 1 << 14;
constexpr std::size_t kSlotBytes = 1 << 20;
constexpr char kPrefix[] = "/convnet-emu-nccl-";
// How long a rank waits at ncclCommInitRank for the others to join.
constexpr auto kJoinTimeout = std::chrono::seconds(300);

struct Header {
    std::atomic<std::uint32_t> nranks;
    std::atomic<std::uint32_t> aborted;     // 1 + the rank that aborted, 0 while none has
    std::atomic<std::uint64_t> arrivals;    // at the barrier, counted since the start
    std::atomic<std::uint32_t> joined[kMaxRanks];
    std::atomic<std::uint64_t> call[kMaxRanks];  // each rank's current collective: count, type
};
static_assert(sizeof(Header) <= kHeaderBytes, "the header outgrew its pages");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the barrier needs lock-free atomics to work across processes");

}  // namespace

class ProcessGroup {
public:
    Header* header = nullptr;
    char* slots = nullptr;
    std::size_t mapped = 0;
    int rank = 0, nranks = 0, device = 0;
    std::uint64_t passed = 0;              // barriers this rank has passed
    std::atomic<bool> aborted{false};      // this rank called ncclCommAbort

    char* slot(int r) const { return slots + std::size_t(r) * kSlotBytes; }

    // Waits until every rank has arrived at this barrier. kRemoteError when another rank
    // aborted, kInternalError when this one did, kSystemError past `deadline` (when given).
    int barrier(std::chrono::steady_clock::time_point deadline = {}) {
        const std::uint64_t target = ++passed * std::uint64_t(nranks);
        header->arrivals.fetch_add(1);
        for (long spins = 0; header->arrivals.load() < target; ++spins) {
            if (aborted.load()) return kInternalError;
            const std::uint32_t who = header->aborted.load();
            if (who != 0 && int(who) - 1 != rank) return kRemoteError;
            if (deadline != std::chrono::steady_clock::time_point{} &&
                std::chrono::steady_clock::now() > deadline)
                return kSystemError;
            if (spins < 10000)
                sched_yield();
            else
                std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
        return kSuccess;
    }
};

int process_unique_id(convnet::nccl::UniqueId* id) {
    if (!id) return kInvalidArgument;
    static std::atomic<unsigned> made{0};
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    std::memset(id->internal, 0, sizeof id->internal);
    std::snprintf(id->internal, sizeof id->internal, "%s%d-%u-%llx", kPrefix, int(getpid()),
                  made.fetch_add(1), static_cast<unsigned long long>(now));
    return kSuccess;
}

int process_comm_init(ProcessGroup** out, int nranks, const convnet::nccl::UniqueId& id,
                      int rank) {
    if (!out || nranks < 1 || nranks > kMaxRanks || rank < 0 || rank >= nranks)
        return kInvalidArgument;
    const std::string name(id.internal, strnlen(id.internal, sizeof id.internal));
    if (name.rfind(kPrefix, 0) != 0) return kInvalidArgument;  // not an id the emulator made
    const std::size_t bytes = kHeaderBytes + std::size_t(nranks) * kSlotBytes;
    const int fd = shm_open(name.c_str(), O_CREAT | O_RDWR, 0600);
    if (fd < 0) return kSystemError;
    // Every rank sizes the segment (the same size: a no-op after the first), so that none maps
    // it before it has its size.
    void* at = ftruncate(fd, off_t(bytes)) == 0
                   ? mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                   : MAP_FAILED;
    close(fd);
    if (at == MAP_FAILED) return kSystemError;
    auto* group = new ProcessGroup;
    group->header = static_cast<Header*>(at);
    group->slots = static_cast<char*>(at) + kHeaderBytes;
    group->mapped = bytes;
    group->rank = rank;
    group->nranks = nranks;
    group->device = current_device();
    Header& h = *group->header;
    std::uint32_t expected = 0;
    const bool counts_agree = h.nranks.compare_exchange_strong(expected, std::uint32_t(nranks)) ||
                              expected == std::uint32_t(nranks);
    if (!counts_agree || h.joined[rank].exchange(1) != 0) {  // another count, or a rank twice
        munmap(at, bytes);
        delete group;
        return kInvalidUsage;
    }
    const int joined = group->barrier(std::chrono::steady_clock::now() + kJoinTimeout);
    if (rank == 0 || joined != kSuccess) shm_unlink(name.c_str());  // mapped by all who came
    if (joined != kSuccess) {
        munmap(at, bytes);
        delete group;
        return joined;
    }
    *out = group;
    return kSuccess;
}

namespace {

template <typename T>
void sum_slots(const ProcessGroup& g, std::size_t n, T* out) {
    std::vector<T> total(n, T(0));
    for (int r = 0; r < g.nranks; ++r) {  // rank order: every rank gets the same bits
        const T* x = reinterpret_cast<const T*>(g.slot(r));
        for (std::size_t i = 0; i < n; ++i) total[i] += x[i];
    }
    const DeviceMemoryAccess open;
    std::memcpy(out, total.data(), n * sizeof(T));
}

}  // namespace

int process_all_reduce(ProcessGroup& g, const void* send, void* recv, std::size_t count,
                       int dtype) {
    if (g.aborted.load()) return kInvalidUsage;
    const std::size_t size = dtype == kFloat32 ? 4 : 8;
    // The ranks first check that they call the same collective.
    g.header->call[g.rank].store(std::uint64_t(count) << 4 | std::uint64_t(dtype));
    if (const int e = g.barrier()) return e;
    for (int r = 0; r < g.nranks; ++r)
        if (g.header->call[r].load() != g.header->call[g.rank].load()) return kInvalidUsage;
    if (count == 0) return g.barrier();   // nobody rewrites its signature before all compared
    const std::size_t per_chunk = kSlotBytes / size;
    for (std::size_t at = 0; at < count; at += per_chunk) {
        const std::size_t n = std::min(per_chunk, count - at);
        {
            const DeviceMemoryAccess open;
            std::memcpy(g.slot(g.rank), static_cast<const char*>(send) + at * size, n * size);
        }
        if (const int e = g.barrier()) return e;
        char* out = static_cast<char*>(recv) + at * size;
        if (dtype == kFloat32)
            sum_slots(g, n, reinterpret_cast<float*>(out));
        else
            sum_slots(g, n, reinterpret_cast<double*>(out));
        if (const int e = g.barrier()) return e;   // the slots are read before they are refilled
    }
    return kSuccess;
}

int process_device(const ProcessGroup& g) { return g.device; }

void process_abort(ProcessGroup& g) {
    g.aborted.store(true);
    std::uint32_t none = 0;
    g.header->aborted.compare_exchange_strong(none, std::uint32_t(g.rank + 1));
}

int process_async_error(const ProcessGroup& g) {
    const std::uint32_t who = g.header->aborted.load();
    return who != 0 && int(who) - 1 != g.rank ? kRemoteError : kSuccess;
}

void process_destroy(ProcessGroup* g) {
    if (!g) return;
    munmap(g->header, g->mapped);
    delete g;
}

}  // namespace convnet::emu::nccl
