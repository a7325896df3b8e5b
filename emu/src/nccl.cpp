// The emulated NCCL (emu/include/nccl_emu.h). Communicators of one ncclCommInitAll share a
// clique; each rank's all-reduce is recorded there, and the call that completes the set sums
// the ranks' buffers in rank order (float32 or float64, on the host, with the device arena
// open) and writes the sum into every rank's output. NCCL's rules are checked: distinct valid
// devices, buffers that lie in a live block of the communicator's device, the same count and
// type on every rank, a stream of that device, and no group left with a collective that not
// every rank called. Communicators across processes (ncclCommInitRank) are nccl_processes.cpp's.
#include "nccl_emu.h"

#include <cuda_runtime.h>

#include <cstring>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "memory.h"
#include "nccl_processes.h"
#include "streams.h"

namespace convnet::emu::nccl {

using namespace convnet::nccl;   // NCCL's result codes and types (csrc/comm/nccl.h)

namespace {

struct Call {
    const void* send;
    void* recv;
};

struct Clique {
    std::vector<int> devices;
    std::vector<Call> calls;          // one per rank while a collective is being called
    std::vector<bool> called;
    std::size_t count = 0;
    int dtype = -1;
    int pending = 0;
};

struct Comm {
    std::shared_ptr<Clique> clique;     // ncclCommInitAll's, in this process
    int rank = 0;
    ProcessGroup* group = nullptr;      // or ncclCommInitRank's, across processes
};

std::mutex& lock() {
    static std::mutex m;
    return m;
}
int& group_depth() {
    static int depth = 0;
    return depth;
}
std::set<Clique*>& open_cliques() {  // cliques with a collective not every rank has called
    static std::set<Clique*> s;
    return s;
}

bool lies_on(const void* ptr, int device, std::size_t bytes) {
    const DeviceBlock b = find_block(ptr);
    if (b.device != device) return false;
    const auto offset = static_cast<std::size_t>(static_cast<const char*>(ptr) - b.begin);
    return bytes <= b.bytes - offset;
}

template <typename T>
void sum_into_every_rank(Clique& c) {
    std::vector<T> total(c.count, T(0));
    const DeviceMemoryAccess open;
    for (const Call& call : c.calls) {  // rank order
        const T* x = static_cast<const T*>(call.send);
        for (std::size_t i = 0; i < c.count; ++i) total[i] += x[i];
    }
    for (const Call& call : c.calls) std::memcpy(call.recv, total.data(), c.count * sizeof(T));
}

}  // namespace

int comm_init_all(void** comms, int ndev, const int* devices) {
    if (!comms || ndev < 1) return kInvalidArgument;
    auto clique = std::make_shared<Clique>();
    std::set<int> seen;
    for (int r = 0; r < ndev; ++r) {
        const int d = devices ? devices[r] : r;
        if (d < 0 || d >= device_count() || !seen.insert(d).second) return kInvalidArgument;
        clique->devices.push_back(d);
    }
    clique->calls.resize(ndev);
    clique->called.assign(ndev, false);
    for (int r = 0; r < ndev; ++r) comms[r] = new Comm{clique, r};
    return kSuccess;
}

int get_unique_id(convnet::nccl::UniqueId* id) { return process_unique_id(id); }

int comm_init_rank(void** comm, int nranks, convnet::nccl::UniqueId id, int rank) {
    if (!comm) return kInvalidArgument;
    ProcessGroup* group = nullptr;
    if (const int e = process_comm_init(&group, nranks, id, rank)) return e;
    *comm = new Comm{nullptr, rank, group};
    return kSuccess;
}

int comm_destroy(void* comm) {
    auto* c = static_cast<Comm*>(comm);
    if (c) process_destroy(c->group);
    delete c;
    return kSuccess;
}

int comm_abort(void* comm) {
    auto* c = static_cast<Comm*>(comm);
    if (!c) return kInvalidArgument;
    // Kept, not freed: another thread may be waiting in the communicator, and ends its wait now.
    if (c->group) process_abort(*c->group);
    return kSuccess;
}

int comm_get_async_error(void* comm, int* result) {
    const auto* c = static_cast<const Comm*>(comm);
    if (!c || !result) return kInvalidArgument;
    *result = c->group ? process_async_error(*c->group) : kSuccess;
    return kSuccess;
}

int all_reduce(const void* send, void* recv, std::size_t count, int dtype, int op, void* comm,
               void* stream) {
    if (!comm || op != kSum || (dtype != kFloat32 && dtype != kFloat64)) return kInvalidArgument;
    const Comm& me = *static_cast<Comm*>(comm);
    const int device = me.group ? process_device(*me.group) : me.clique->devices[me.rank];
    const std::size_t bytes = count * (dtype == kFloat32 ? 4 : 8);
    if (stream_device(static_cast<cudaStream_t>(stream)) != device) return kInvalidUsage;
    if (!lies_on(send, device, bytes) || !lies_on(recv, device, bytes)) return kInvalidArgument;
    if (me.group) return process_all_reduce(*me.group, send, recv, count, dtype);
    Clique& c = *me.clique;
    std::lock_guard<std::mutex> g(lock());
    if (c.pending == 0) {
        c.count = count;
        c.dtype = dtype;
        open_cliques().insert(&c);
    } else if (c.count != count || c.dtype != dtype || c.called[me.rank]) {
        return kInvalidUsage;  // ranks that disagree, or a rank calling twice
    }
    c.calls[me.rank] = Call{send, recv};
    c.called[me.rank] = true;
    if (++c.pending < static_cast<int>(c.devices.size())) return kSuccess;
    if (dtype == kFloat32)
        sum_into_every_rank<float>(c);
    else
        sum_into_every_rank<double>(c);
    c.pending = 0;
    c.called.assign(c.devices.size(), false);
    open_cliques().erase(&c);
    return kSuccess;
}

int group_start() {
    std::lock_guard<std::mutex> g(lock());
    ++group_depth();
    return kSuccess;
}

int group_end() {
    std::lock_guard<std::mutex> g(lock());
    if (group_depth() == 0) return kInvalidUsage;
    if (--group_depth() == 0 && !open_cliques().empty()) return kInvalidUsage;
    return kSuccess;
}

const char* error_string(int result) {
    switch (result) {
        case kSuccess: return "no error";
        case kSystemError: return "unhandled system error (the other ranks did not join)";
        case kInternalError: return "internal error (the communicator was aborted)";
        case kInvalidArgument: return "invalid argument";
        case kInvalidUsage: return "invalid usage";
        case kRemoteError: return "remote process exited or there was a network error";
        default: return "unknown result";
    }
}

}  // namespace convnet::emu::nccl
