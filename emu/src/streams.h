// Streams of the emulated CUDA device, as the launch and the copies see them.
#pragma once

#include <cuda_runtime.h>

namespace convnet::emu {

// The device whose work `stream` orders: the current device for 0, cudaStreamLegacy and
// cudaStreamPerThread, the creating device for a stream from cudaStreamCreate; -1 for a
// destroyed stream or a handle the runtime never gave out.
int stream_device(cudaStream_t stream);

// Throws convnet::Error naming `kernel` when `stream` cannot take a launch on the current device:
// a destroyed or unknown stream, or one that belongs to another device.
void check_launch_stream(cudaStream_t stream, const char* kernel);

}  // namespace convnet::emu
