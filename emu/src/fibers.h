// Cooperative threads for the emulated device: the threads of one block run as fibers on one CPU
// thread, switching only at __syncthreads and warp shuffles, so barriers and warp exchanges
// behave as on a GPU and a kernel that breaks their rules stops with an error naming it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include <cuda_runtime.h>

namespace convnet::emu {

// Runs thread_body once for each thread of a block of `block` threads (threadIdx set for each),
// as fibers on the calling CPU thread; returns when all have finished. Throws convnet::Error
// naming `kernel` when a barrier or warp shuffle is misused, or rethrows a thread's exception.
void run_block(const dim3& block, const char* kernel, const std::function<void()>& thread_body);

// __syncthreads: waits until every thread of the block has reached it.
void block_barrier();
// kWarpPayloadBytes (cuda_runtime.h): the most a lane contributes to one warp exchange.
// A warp collective: every lane in `mask` (which must hold the caller's lane and only lanes that
// exist) contributes `bytes` (at most kWarpPayloadBytes) and gets back the 32 lanes'
// contributions, kWarpPayloadBytes apart, once all of them have arrived. `what` names the
// operation in errors.
const void* warp_exchange(unsigned mask, const void* mine, std::size_t bytes, const char* what);
// __shfl_xor_sync: exchanges `bits` (a value of up to 8 bytes) with lane ^ lane_mask within
// segments of `width` lanes, among the lanes named in `mask`, which must all arrive.
std::uint64_t warp_shuffle_xor(unsigned mask, std::uint64_t bits, int lane_mask, int width);

}  // namespace convnet::emu
