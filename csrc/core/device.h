// Devices: where a tensor's storage lives. "cpu" always exists; "cuda:N" exists when the module
// was built with the CUDA kernels and a GPU and driver are present at run time.
#pragma once

#include <string>

namespace convnet {

enum class DeviceType { cpu, cuda };

struct Device {
    DeviceType type = DeviceType::cpu;
    int index = 0;

    static Device cpu() { return Device{}; }
    static Device cuda(int index) { return Device{DeviceType::cuda, index}; }
    // Parses "cpu", "cuda" (= cuda:0) or "cuda:N"; throws ArgumentError otherwise.
    static Device parse(const std::string& text);

    bool is_cpu() const { return type == DeviceType::cpu; }
    bool is_cuda() const { return type == DeviceType::cuda; }
    std::string str() const;
    bool operator==(const Device& o) const { return type == o.type && index == o.index; }
    bool operator!=(const Device& o) const { return !(*this == o); }
};

// Number of usable GPUs: 0 when built without CUDA, without a driver, or without a GPU.
int cuda_device_count();
// True when this module contains compiled CUDA kernels.
bool built_with_cuda();

}  // namespace convnet
