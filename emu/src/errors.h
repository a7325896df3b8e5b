// The emulated runtime's errors: like CUDA's, a failing call also leaves its error for the next
// cudaGetLastError; a kernel that breaks the device's rules stops with a convnet::Error naming it.
#pragma once

#include <cuda_runtime.h>

#include <string>

namespace convnet::emu {

// Records `error` as the calling thread's last error and returns it.
cudaError_t fail(cudaError_t error);

// Throws "emulated device: kernel <kernel>: <what>".
[[noreturn]] void kernel_error(const char* kernel, const std::string& what);

}  // namespace convnet::emu
