// Sums over processes (MPI ranks) with one GPU each, through NCCL: the gradient all-reduce of
// data parallelism on GPUs (src/convnet/allreduce.py). Rank 0 makes an id (nccl_unique_id), MPI
// hands it to every rank, and each joins with its GPU. The sums run on a communication stream
// of their own beside the compute stream: ready() makes that stream wait for the compute
// stream's work so far (the gradients backward has finished), sum() all-reduces a bucket of
// tensors in place there and returns when it is done. It polls instead of blocking, so that
// abort() from another thread (the training thread's deadline) ends a sum that waits for a rank
// that hangs or died.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "comm/nccl.h"
#include "core/tensor.h"

namespace convnet {

// A new id for a communicator (NCCL's 128 bytes); throws where NCCL is missing.
std::string nccl_unique_id();

class NcclRanks {
public:
    // Joins the communicator `id` as `rank` of `nranks` with GPU `device`; returns when all
    // ranks have joined.
    NcclRanks(const std::string& id, int nranks, int rank, int device);
    ~NcclRanks();
    NcclRanks(const NcclRanks&) = delete;
    NcclRanks& operator=(const NcclRanks&) = delete;

    // Scales each tensor by `scale` on the compute stream (this rank's share of the batch), then
    // makes the communication stream wait for the compute stream's work so far.
    void ready(const std::vector<Tensor>& tensors, double scale);
    // Every tensor becomes its sum over the ranks (one grouped all-reduce), on the
    // communication stream after the last ready(); returns when the sums are done. Throws
    // convnet::Error when NCCL reports an error or the communicator was aborted.
    void sum(const std::vector<Tensor>& tensors);
    // From any thread: ends the communicator; a sum in progress throws.
    void abort();
    int device() const { return device_; }

private:
    void check_live();

    const nccl::Api* api_ = nullptr;
    nccl::Comm comm_ = nullptr;
    int device_ = 0;
    std::uintptr_t stream_ = 0, done_ = 0;
    std::mutex mutex_;     // guards comm_ against abort() while a sum polls it
    bool aborted_ = false;
};

}  // namespace convnet
