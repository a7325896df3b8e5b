// The emulated runtime's error state: like CUDA's, a failing call also leaves its error for the
// next cudaGetLastError.
#pragma once

#include <cuda_runtime.h>

namespace convnet::emu {

// Records `error` as the calling thread's last error and returns it.
cudaError_t fail(cudaError_t error);

}  // namespace convnet::emu
