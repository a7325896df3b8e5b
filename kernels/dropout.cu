// Dropout kernels. One thread per Philox block: the four words of stream_block(seed, layer,
// step, j/4) (csrc/math/rng.h, the CPU path's own function) decide stream positions
// j = 4b..4b+3, element i being position offset + i, so every mask bit is the CPU's bit for bit.
// Where x and y are 16-byte aligned and the offset a multiple of 4, a thread moves its four
// elements as one float4; otherwise (or for the last, partial block) element by element.
// Memory-bound: 8 bytes per element (12 when accumulating into dx); Philox-10 costs ~20 integer
// instructions per element, well under the H100's integer rate at 3.35 TB/s, so the kernel
// should run at copy speed. At test time no random numbers are drawn: a plain scaled copy.
#include "csrc/ops/dropout.h"
#include "kernels/common.cuh"
#include "math/rng.h"

namespace convnet {

namespace {
constexpr int kThreads = 256;

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15) == 0; }

// y = kept ? x*factor : 0, then beta*y + that when accumulating; the CPU's formula.
template <bool kAccumulate>
__device__ __forceinline__ float dropped(float x, float y_old, bool kept, float factor,
                                         float beta) {
    const float v = kept ? x * factor : 0.f;
    return kAccumulate ? beta * y_old + v : v;
}

// Where the elements fall in the stream's blocks: element i is position offset + i, so block b
// of the launch is stream block first + b and covers elements [4b - lead, 4b - lead + 4).
struct BlockSpan {
    explicit BlockSpan(std::uint64_t offset) : first(offset / 4), lead(int(offset % 4)) {}
    CONVNET_HD std::int64_t blocks(std::int64_t n) const { return (n + lead + 3) / 4; }
    std::uint64_t first;
    int lead;
};

// x, y: n floats (any shape, flat; y may be x). Each iteration of the grid-stride loop owns one
// Philox block b. kVec: lead 0 and x, y 16-byte aligned, so a whole block is one float4.
template <bool kTrain, bool kAccumulate, bool kVec>
__global__ void dropout_apply_kernel(const float* x, float* y,
                                     std::int64_t n, std::uint64_t seed, std::uint32_t layer,
                                     std::uint64_t step, BlockSpan span, std::uint64_t threshold,
                                     float factor, float beta) {
    const std::int64_t blocks = span.blocks(n);
    for (std::int64_t blk = first_index<std::int64_t>(); blk < blocks;
         blk += index_stride<std::int64_t>()) {
        const std::int64_t i0 = blk * 4 - span.lead;
        const bool vec = kVec && i0 + 4 <= n;
        // The loads first, so that they are in flight while Philox runs.
        float xs[4] = {0.f, 0.f, 0.f, 0.f}, ys[4] = {0.f, 0.f, 0.f, 0.f};
        if (vec) {
            const float4 xv = reinterpret_cast<const float4*>(x)[blk];
            xs[0] = xv.x, xs[1] = xv.y, xs[2] = xv.z, xs[3] = xv.w;
            if (kAccumulate) {
                const float4 yv = reinterpret_cast<const float4*>(y)[blk];
                ys[0] = yv.x, ys[1] = yv.y, ys[2] = yv.z, ys[3] = yv.w;
            }
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                if (i0 + j >= 0 && i0 + j < n) {
                    xs[j] = x[i0 + j];
                    if (kAccumulate) ys[j] = y[i0 + j];
                }
            }
        }
        bool kept[4] = {true, true, true, true};
        if (kTrain) {
            const rng::Words4 r =
                rng::stream_block(seed, layer, step, std::uint32_t(span.first + blk));
#pragma unroll
            for (int j = 0; j < 4; ++j) kept[j] = std::uint64_t(r.v[j]) < threshold;
        }
#pragma unroll
        for (int j = 0; j < 4; ++j)
            ys[j] = dropped<kAccumulate>(xs[j], ys[j], kept[j], factor, beta);
        if (vec) {
            reinterpret_cast<float4*>(y)[blk] = make_float4(ys[0], ys[1], ys[2], ys[3]);
        } else {
#pragma unroll
            for (int j = 0; j < 4; ++j)
                if (i0 + j >= 0 && i0 + j < n) y[i0 + j] = ys[j];
        }
    }
}

// mask: n bytes, 1 = kept. Where mask is 4-byte aligned and lead is 0 a full block is one
// 32-bit store (little-endian: element 4b is the lowest byte).
__global__ void dropout_mask_kernel(std::uint8_t* __restrict__ mask, std::int64_t n,
                                    std::uint64_t seed, std::uint32_t layer, std::uint64_t step,
                                    BlockSpan span, std::uint64_t threshold, bool word_stores) {
    const std::int64_t blocks = span.blocks(n);
    for (std::int64_t blk = first_index<std::int64_t>(); blk < blocks;
         blk += index_stride<std::int64_t>()) {
        const rng::Words4 r =
            rng::stream_block(seed, layer, step, std::uint32_t(span.first + blk));
        const std::int64_t i0 = blk * 4 - span.lead;
        if (word_stores && i0 + 4 <= n) {
            std::uint32_t packed = 0;
#pragma unroll
            for (int j = 0; j < 4; ++j)
                packed |= std::uint32_t(std::uint64_t(r.v[j]) < threshold) << (8 * j);
            reinterpret_cast<std::uint32_t*>(mask)[blk] = packed;
        } else {
            for (int j = 0; j < 4 && i0 + j < n; ++j)
                if (i0 + j >= 0) mask[i0 + j] = std::uint64_t(r.v[j]) < threshold ? 1 : 0;
        }
    }
}

template <bool kTrain, bool kAccumulate>
void launch_apply(const float* x, float* y, std::int64_t n, const DropoutParams& p,
                  std::uint64_t threshold, float factor, float beta, cudaStream_t stream) {
    const BlockSpan span(p.offset);
    const unsigned grid = cuda::grid_for(span.blocks(n), kThreads);
    if (span.lead == 0 && aligned16(x) && aligned16(y))
        CONVNET_LAUNCH(grid, kThreads, 0, stream, dropout_apply_kernel<kTrain, kAccumulate, true>)(
            x, y, n, p.seed, p.layer, p.step, span, threshold, factor, beta);
    else
        CONVNET_LAUNCH(grid, kThreads, 0, stream, dropout_apply_kernel<kTrain, kAccumulate, false>)(
            x, y, n, p.seed, p.layer, p.step, span, threshold, factor, beta);
}

}  // namespace

void dropout_mask_cuda(std::uint8_t* mask, std::int64_t n, const DropoutParams& p,
                       void* stream) {
    if (n == 0) return;
    const BlockSpan span(p.offset);
    const bool word_stores = span.lead == 0 && (reinterpret_cast<std::uintptr_t>(mask) & 3) == 0;
    CONVNET_LAUNCH(cuda::grid_for(span.blocks(n), kThreads), kThreads, 0, cuda::as_stream(stream),
                   dropout_mask_kernel)(mask, n, p.seed, p.layer, p.step, span,
                                        rng::keep_threshold(1.0 - p.p), word_stores);
    CONVNET_LAUNCH_CHECK();
}

void dropout_apply_cuda(const float* x, float* y, std::int64_t n, const DropoutParams& p,
                        float beta, void* stream) {
    if (n == 0) return;
    const std::uint64_t threshold = rng::keep_threshold(1.0 - p.p);
    const float factor = float(p.kept_factor());
    const cudaStream_t s = cuda::as_stream(stream);
    if (p.train) {
        if (beta == 0.f)
            launch_apply<true, false>(x, y, n, p, threshold, factor, beta, s);
        else
            launch_apply<true, true>(x, y, n, p, threshold, factor, beta, s);
    } else {
        if (beta == 0.f)
            launch_apply<false, false>(x, y, n, p, threshold, factor, beta, s);
        else
            launch_apply<false, true>(x, y, n, p, threshold, factor, beta, s);
    }
    CONVNET_LAUNCH_CHECK();
}

}  // namespace convnet
