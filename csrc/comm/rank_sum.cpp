// NCCL sums between ranks (rank_sum.h). A build without CUDA has the class, which refuses to
// start: data parallelism on CPUs sums through MPI.
#include "comm/rank_sum.h"

#include <chrono>
#include <cstring>
#include <thread>

#include "core/check.h"
#include "ops/eltwise.h"

#ifdef CONVNET_WITH_CUDA
#include "core/cuda_runtime.h"
#endif

namespace convnet {

namespace {

const nccl::Api& loaded_nccl() {
    std::string why_not;
    const nccl::Api* api = nccl::api(&why_not);
    if (!api) throw Error("NCCL sums between ranks: " + why_not);
    return *api;
}

}  // namespace

std::string nccl_unique_id() {
    const nccl::Api& api = loaded_nccl();
    nccl::UniqueId id{};
    nccl::check(api, api.get_unique_id(&id), "ncclGetUniqueId");
    return std::string(id.internal, sizeof id.internal);
}

#ifdef CONVNET_WITH_CUDA

NcclRanks::NcclRanks(const std::string& id, int nranks, int rank, int device)
    : api_(&loaded_nccl()), device_(device) {
    nccl::UniqueId unique{};
    CONVNET_ARG_CHECK(id.size() == sizeof unique.internal, "NcclRanks: the id has ", id.size(),
                      " bytes, not NCCL's ", sizeof unique.internal);
    CONVNET_ARG_CHECK(0 <= rank && rank < nranks, "NcclRanks: rank ", rank, " of ", nranks);
    CONVNET_ARG_CHECK(0 <= device && device < cuda::device_count(), "NcclRanks: no GPU ",
                      device, " (", cuda::device_count(), " here)");
    std::memcpy(unique.internal, id.data(), id.size());
    const cuda::DeviceGuard on(device);
    nccl::check(*api_, api_->comm_init_rank(&comm_, nranks, unique, rank), "ncclCommInitRank");
    stream_ = cuda::stream_create(device);
    done_ = cuda::event_create(device);
}

NcclRanks::~NcclRanks() {
    try {
        const cuda::DeviceGuard on(device_);
        if (!aborted_ && comm_) api_->comm_destroy(comm_);   // ncclCommAbort freed it already
        if (done_) cuda::event_destroy(done_);
        if (stream_) cuda::stream_destroy(stream_);
    } catch (const std::exception&) {   // at teardown, after an error elsewhere: nothing to do
    }
}

void NcclRanks::check_live() {
    if (aborted_) throw Error("the NCCL communicator was aborted (a rank did not answer in time)");
}

void NcclRanks::ready(const std::vector<Tensor>& tensors, double scale) {
    const cuda::DeviceGuard on(device_);
    if (scale != 1.0)
        for (const Tensor& t : tensors) eltwise_scale(t, scale, t);
    cuda::make_stream_wait_for(device_, stream_);
}

void NcclRanks::sum(const std::vector<Tensor>& tensors) {
    for (const Tensor& t : tensors)
        CONVNET_ARG_CHECK(t.device() == Device::cuda(device_) &&
                              (t.dtype() == DType::f32 || t.dtype() == DType::f64),
                          "NcclRanks.sum: a float tensor on cuda:", device_, " is needed, got ",
                          dtype_name(t.dtype()), " on ", t.device().str());
    const cuda::DeviceGuard on(device_);
    {
        std::lock_guard<std::mutex> g(mutex_);
        check_live();
    }
    auto enqueue = [&](int result, const char* what) {
        if (result == nccl::kSuccess) return;
        std::lock_guard<std::mutex> g(mutex_);
        check_live();   // the emulator's waits end with an error when another thread aborts
        nccl::check(*api_, result, what);
    };
    enqueue(api_->group_start(), "ncclGroupStart");
    for (const Tensor& t : tensors)
        enqueue(api_->all_reduce(t.raw(), t.raw(), std::size_t(t.numel()),
                                 t.dtype() == DType::f32 ? nccl::kFloat32 : nccl::kFloat64,
                                 nccl::kSum, comm_, reinterpret_cast<void*>(stream_)),
                "ncclAllReduce");
    enqueue(api_->group_end(), "ncclGroupEnd");
    cuda::event_record(done_, stream_);
    while (!cuda::event_done(done_)) {
        {
            std::lock_guard<std::mutex> g(mutex_);
            check_live();
            int async = nccl::kSuccess;
            nccl::check(*api_, api_->comm_get_async_error(comm_, &async),
                        "ncclCommGetAsyncError");
            nccl::check(*api_, async, "the NCCL all-reduce");
        }
        std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
}

void NcclRanks::abort() {
    std::lock_guard<std::mutex> g(mutex_);
    if (aborted_) return;
    aborted_ = true;
    api_->comm_abort(comm_);
}

#else

NcclRanks::NcclRanks(const std::string&, int, int, int) : api_(&loaded_nccl()) {}
NcclRanks::~NcclRanks() = default;
void NcclRanks::check_live() {}
void NcclRanks::ready(const std::vector<Tensor>&, double) {}
void NcclRanks::sum(const std::vector<Tensor>&) {}
void NcclRanks::abort() {}

#endif

}  // namespace convnet
