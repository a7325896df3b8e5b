// Device parsing and GPU discovery.
#include "core/device.h"

#include "core/check.h"
#include "core/cuda_runtime.h"

namespace convnet {

Device Device::parse(const std::string& text) {
    if (text == "cpu") return cpu();
    if (text == "cuda") return cuda(0);
    if (text.rfind("cuda:", 0) == 0) {
        const std::string digits = text.substr(5);
        bool ok = !digits.empty() && digits.size() < 6;
        for (char ch : digits) ok = ok && ch >= '0' && ch <= '9';
        CONVNET_ARG_CHECK(ok, "device: expected 'cpu', 'cuda' or 'cuda:N', got '", text, "'");
        return cuda(std::stoi(digits));
    }
    throw ArgumentError("device: expected 'cpu', 'cuda' or 'cuda:N', got '" + text + "'");
}

std::string Device::str() const {
    return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

int cuda_device_count() {
#ifdef CONVNET_WITH_CUDA
    return cuda::device_count();
#else
    return 0;
#endif
}

bool built_with_cuda() {
#ifdef CONVNET_WITH_CUDA
    return true;
#else
    return false;
#endif
}

}  // namespace convnet
