// The emulated NCCL's communicators across processes (ncclCommInitRank): one emulated GPU per
// process, the processes meeting in a POSIX shared-memory segment that the unique id names.
// Collectives complete when every rank has called them and sum in rank order, so every rank
// ends with the same bits; a rank that calls ncclCommAbort makes the others' waits end too
// (ncclRemoteError), as a real communicator's peers see a remote error.
#pragma once

#include <cstddef>

#include "comm/nccl.h"

namespace convnet::emu::nccl {

class ProcessGroup;

// ncclGetUniqueId: a fresh segment name.
int process_unique_id(convnet::nccl::UniqueId* id);
// ncclCommInitRank on the current device; blocks until every rank has joined.
int process_comm_init(ProcessGroup** group, int nranks, const convnet::nccl::UniqueId& id,
                      int rank);
// The all-reduce of one rank (checked by the caller: op, type, device, stream).
int process_all_reduce(ProcessGroup& group, const void* send, void* recv, std::size_t count,
                       int dtype);
int process_device(const ProcessGroup& group);
// ncclCommAbort (from any thread: a wait in progress returns) and ncclCommGetAsyncError.
void process_abort(ProcessGroup& group);
int process_async_error(const ProcessGroup& group);
void process_destroy(ProcessGroup* group);

}  // namespace convnet::emu::nccl
