// NCCL, the part of its C API convnet calls, through a table of functions: on a CUDA build
// libnccl.so.2 opened at run time (the nvidia-nccl-cu13 wheel's, or the system's), so that
// nothing is needed to build and a machine without NCCL still trains (through host memory); on
// the emulated build the emulator's collectives (emu/src/nccl.cpp), which sum through host
// memory, so the calling code is tested without a GPU. The declarations follow NCCL's ABI
// (nccl.h): communicators are opaque pointers, results and types are C enums.
#pragma once

#include <cstddef>
#include <string>

namespace convnet::nccl {

using Comm = void*;                   // ncclComm_t
struct UniqueId {                     // ncclUniqueId: passed by value, as NCCL's ABI has it
    char internal[128];
};
constexpr int kSuccess = 0;           // ncclSuccess (the results the emulator gives, too)
constexpr int kSystemError = 2;       // ncclSystemError
constexpr int kInternalError = 3;     // ncclInternalError
constexpr int kInvalidArgument = 4;   // ncclInvalidArgument
constexpr int kInvalidUsage = 5;      // ncclInvalidUsage
constexpr int kRemoteError = 6;       // ncclRemoteError
constexpr int kFloat32 = 7;           // ncclFloat32
constexpr int kFloat64 = 8;           // ncclFloat64
constexpr int kSum = 0;               // ncclSum

struct Api {
    int (*comm_init_all)(Comm* comms, int ndev, const int* devices);    // ncclCommInitAll
    int (*comm_destroy)(Comm comm);                                     // ncclCommDestroy
    int (*all_reduce)(const void* send, void* recv, std::size_t count, int dtype, int op,
                      Comm comm, void* stream);                          // ncclAllReduce
    int (*group_start)();                                                // ncclGroupStart
    int (*group_end)();                                                  // ncclGroupEnd
    const char* (*error_string)(int result);                             // ncclGetErrorString
    // Communicators of one GPU per process (MPI ranks): rank 0 makes the id, every rank joins.
    int (*get_unique_id)(UniqueId* id);                                  // ncclGetUniqueId
    int (*comm_init_rank)(Comm* comm, int nranks, UniqueId id, int rank); // ncclCommInitRank
    int (*comm_abort)(Comm comm);                                        // ncclCommAbort
    int (*comm_get_async_error)(Comm comm, int* result);                 // ncclCommGetAsyncError
};

// The table, or nullptr with the reason in *why_not (a build without CUDA, no libnccl.so.2).
// Loaded once; set_library names the file (the wheel's path, found from Python): before the
// first use, or after a miss, which is then tried again with it.
const Api* api(std::string* why_not = nullptr);
void set_library(const std::string& path);

// Throws convnet::Error naming `what` and NCCL's message when `result` is not kSuccess.
void check(const Api& nccl, int result, const char* what);

}  // namespace convnet::nccl
