// Streams of the emulated CUDA device, as the launch sees them.
#pragma once

#include <cuda_runtime.h>

namespace convnet::emu {

// Throws convnet::Error naming `kernel` when `stream` cannot take a launch on the current device.
void check_launch_stream(cudaStream_t stream, const char* kernel);

}  // namespace convnet::emu
