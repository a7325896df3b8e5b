// Sums across devices (device_sum.h): NCCL where every part is on a GPU and the library is
// there, host memory otherwise (or for a CPU part).
#include "comm/device_sum.h"

#include <map>
#include <mutex>
#include <set>

#include "comm/nccl.h"
#include "core/check.h"
#include "ops/eltwise.h"

#ifdef CONVNET_WITH_CUDA
#include "core/cuda_runtime.h"
#endif

namespace convnet {

namespace {

#ifdef CONVNET_WITH_CUDA
// The communicators of one device set, made on first use and kept for the process's life (NCCL's
// set-up costs far more than a sum).
const std::vector<nccl::Comm>& communicators(const nccl::Api& api,
                                             const std::vector<int>& devices) {
    static std::mutex m;
    static std::map<std::vector<int>, std::vector<nccl::Comm>> made;
    std::lock_guard<std::mutex> g(m);
    auto it = made.find(devices);
    if (it != made.end()) return it->second;
    std::vector<nccl::Comm> comms(devices.size());
    nccl::check(api, api.comm_init_all(comms.data(), int(devices.size()), devices.data()),
                "ncclCommInitAll");
    return made.emplace(devices, std::move(comms)).first->second;
}
#endif

bool sum_with_nccl(const std::vector<Tensor>& parts) {
#ifdef CONVNET_WITH_CUDA
    for (const Tensor& p : parts)
        if (!p.device().is_cuda()) return false;
    const DType dtype = parts[0].dtype();
    if (dtype != DType::f32 && dtype != DType::f64) return false;
    const nccl::Api* api = nccl::api();
    if (!api) return false;
    std::vector<int> devices;
    for (const Tensor& p : parts) devices.push_back(p.device().index);
    const auto& comms = communicators(*api, devices);
    const int type = dtype == DType::f32 ? nccl::kFloat32 : nccl::kFloat64;
    nccl::check(*api, api->group_start(), "ncclGroupStart");
    for (std::size_t k = 0; k < parts.size(); ++k) {
        const cuda::DeviceGuard on(devices[k]);
        nccl::check(*api,
                    api->all_reduce(parts[k].raw(), parts[k].raw(), std::size_t(parts[k].numel()),
                                    type, nccl::kSum, comms[k], nullptr),
                    "ncclAllReduce");
    }
    nccl::check(*api, api->group_end(), "ncclGroupEnd");
    for (int d : devices) cuda::synchronize(d);
    return true;
#else
    (void)parts;
    return false;
#endif
}

}  // namespace

std::string sum_across_devices(const std::vector<Tensor>& parts) {
    CONVNET_ARG_CHECK(!parts.empty(), "sum_across_devices: no tensors");
    std::set<std::string> devices;
    for (const Tensor& p : parts) {
        CONVNET_ARG_CHECK(p.numel() == parts[0].numel() && p.dtype() == parts[0].dtype(),
                          "sum_across_devices: the parts differ in size or type (",
                          shape_str(p.shape()), " against ", shape_str(parts[0].shape()), ")");
        CONVNET_ARG_CHECK(devices.insert(p.device().str()).second, "sum_across_devices: two "
                          "parts on ", p.device().str(), " (one part a device)");
    }
    if (parts.size() == 1) return "local";
    if (sum_with_nccl(parts)) return "nccl";
    // Through host memory, in list order: ((p0 + p1) + p2) ...
    const Tensor total = Tensor::empty(parts[0].shape(), parts[0].dtype(), Device::cpu());
    const Tensor staged = Tensor::empty(parts[0].shape(), parts[0].dtype(), Device::cpu());
    total.copy_from(parts[0]);
    for (std::size_t k = 1; k < parts.size(); ++k) {
        staged.copy_from(parts[k]);
        eltsum_forward({total, staged}, {1.0, 1.0}, total);
    }
    for (const Tensor& p : parts) p.copy_from(total);
    return "host";
}

}  // namespace convnet
