// Deliberately broken kernels (and the correct ones they break), built into the emulated device
// only, so that tests/test_emulator.py can show each of the emulator's checks catching the
// mistake it exists for: the error it raises is the test's expectation.
#include "broken_kernels.h"

#include <cstdlib>
#include <map>
#include <string>

#include "kernels/common.cuh"

namespace convnet::emu::selftest {

namespace {

constexpr int kThreads = 64;

// Each thread stores its value in shared memory and reads its left neighbour's (thread 0 its
// own).
template <bool barrier>
__global__ void neighbour_kernel(const float* x, float* y) {
    __shared__ float tile[kThreads];
    const int i = threadIdx.x;
    tile[i] = x[i];
    if (barrier) __syncthreads();
    y[i] = tile[i > 0 ? i - 1 : 0];
}

__global__ void same_word_kernel(float* y) {
    __shared__ float word;
    word = float(threadIdx.x);  // every thread writes the one word
    __syncthreads();
    y[threadIdx.x] = word;
}

__global__ void uninitialised_shared_kernel(float* y) {
    __shared__ float tile[kThreads];
    if (threadIdx.x > 0) tile[threadIdx.x] = 1.f;  // thread 0's word is never written
    __syncthreads();
    y[threadIdx.x] = tile[threadIdx.x ^ 1];
}

__global__ void partial_barrier_kernel(float* y) {
    if (threadIdx.x < 16) return;
    __syncthreads();  // the first 16 threads never arrive
    y[threadIdx.x] = 1.f;
}

__global__ void shuffle_without_own_lane_kernel(float* y) {
    y[threadIdx.x] = __shfl_xor_sync(0x0000ffffu, float(threadIdx.x), 1);  // lanes 16-31 too
}

__global__ void shuffle_missing_lanes_kernel(float* y) {
    y[threadIdx.x] = __shfl_xor_sync(0xffffffffu, float(threadIdx.x), 1);  // 16-thread block
}

__global__ void copy_kernel(const float* x, float* y, int n) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i <= n) y[i] = x[i];  // off by one at the edge: i == n is past the end
}

__global__ void dynamic_shared_kernel(float* y, int words) {
    CONVNET_DYNAMIC_SHARED(float, buffer);
    for (int w = threadIdx.x; w < words; w += blockDim.x) buffer[w] = 1.f;
    __syncthreads();
    if (threadIdx.x == 0) y[0] = buffer[words - 1];
}

struct Pointers {
    const float* x;
    float* y;
};
__global__ void through_struct_kernel(Pointers p) { p.y[threadIdx.x] = p.x[threadIdx.x]; }

void sync_launch_check() { CONVNET_LAUNCH_CHECK(); }

}  // namespace

void run_broken_kernel(const std::string& name, float* mine, float* other, float* host) {
    // mine: 2 * 64 floats on the current device (x, then y); other: 64 floats on another
    // device; host: 64 floats of host memory.
    const dim3 one(1), block(kThreads);
    if (name.rfind("other_device", 0) == 0) {
        // A net on two devices earlier in the process may have enabled peer access, which would
        // make the other device's pointer legal.
        int device = 0;
        CONVNET_CUDA_CHECK(cudaGetDevice(&device));
        if (cudaDeviceDisablePeerAccess(1 - device) != cudaSuccess) cudaGetLastError();
    }
    if (name == "missing_syncthreads")
        CONVNET_LAUNCH(one, block, 0, nullptr, neighbour_kernel<false>)(mine, mine + kThreads);
    else if (name == "with_syncthreads")
        CONVNET_LAUNCH(one, block, 0, nullptr, neighbour_kernel<true>)(mine, mine + kThreads);
    else if (name == "same_shared_word")
        CONVNET_LAUNCH(one, block, 0, nullptr, same_word_kernel)(mine);
    else if (name == "uninitialised_shared")
        CONVNET_LAUNCH(one, block, 0, nullptr, uninitialised_shared_kernel)(mine);
    else if (name == "partial_barrier")
        CONVNET_LAUNCH(one, block, 0, nullptr, partial_barrier_kernel)(mine);
    else if (name == "shuffle_without_own_lane")
        CONVNET_LAUNCH(one, dim3(32), 0, nullptr, shuffle_without_own_lane_kernel)(mine);
    else if (name == "shuffle_missing_lanes")
        CONVNET_LAUNCH(one, dim3(16), 0, nullptr, shuffle_missing_lanes_kernel)(mine);
    else if (name == "too_many_threads")
        CONVNET_LAUNCH(one, dim3(1025), 0, nullptr, copy_kernel)(mine, mine, 0);
    else if (name == "read_past_the_end")
        CONVNET_LAUNCH(dim3(5), dim3(32), 0, nullptr, copy_kernel)(mine, mine, 2 * kThreads);
    else if (name == "too_much_shared")
        CONVNET_LAUNCH(one, block, 64 * 1024, nullptr, dynamic_shared_kernel)(mine, 16 * 1024);
    else if (name == "shared_opted_in") {
        CONVNET_CUDA_CHECK(cudaFuncSetAttribute(dynamic_shared_kernel,
                                                cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                64 * 1024));
        CONVNET_LAUNCH(one, block, 64 * 1024, nullptr, dynamic_shared_kernel)(mine + kThreads,
                                                                              16 * 1024);
    } else if (name == "dynamic_shared_past_the_end")
        CONVNET_LAUNCH(one, block, 1024, nullptr, dynamic_shared_kernel)(mine, 257);
    else if (name == "other_device_argument")
        CONVNET_LAUNCH(one, block, 0, nullptr, neighbour_kernel<true>)(other, mine);
    else if (name == "other_device_in_struct")
        CONVNET_LAUNCH(one, block, 0, nullptr, through_struct_kernel)(Pointers{other, mine});
    else if (name == "host_argument")
        CONVNET_LAUNCH(one, block, 0, nullptr, neighbour_kernel<true>)(host, mine);
    else if (name == "host_pointer_in_struct")
        CONVNET_LAUNCH(one, block, 0, nullptr, through_struct_kernel)(Pointers{host, mine});
    else
        throw Error(detail::concat("no broken kernel called '", name, "'"));
    sync_launch_check();
}

}  // namespace convnet::emu::selftest
