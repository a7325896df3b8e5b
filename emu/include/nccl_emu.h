// The emulated device's NCCL: the calls of csrc/comm/nccl.h's table, with NCCL's meaning, for
// communicators over the emulated devices of one process (ncclCommInitAll) and of one emulated
// device per process across processes (ncclCommInitRank, through shared memory). A collective
// completes when every rank of its communicator has called it (inside or outside a group), and
// sums through host memory in rank order, so the result is the same bits on every rank.
#pragma once

#include <cstddef>

#include "comm/nccl.h"

namespace convnet::emu::nccl {

int comm_init_all(void** comms, int ndev, const int* devices);
int comm_destroy(void* comm);
int all_reduce(const void* send, void* recv, std::size_t count, int dtype, int op, void* comm,
               void* stream);
int group_start();
int group_end();
const char* error_string(int result);
int get_unique_id(convnet::nccl::UniqueId* id);
int comm_init_rank(void** comm, int nranks, convnet::nccl::UniqueId id, int rank);
int comm_abort(void* comm);
int comm_get_async_error(void* comm, int* result);

}  // namespace convnet::emu::nccl
