// Concatenation of each sample's features: whole (n, total) holds the parts (n, width_i) side by
// side. One launch per part: a 2-D grid, x over the part's columns, y over rows (grid-stride
// beyond 65535); each thread copies its column in the rows of its grid row, so reads and writes
// are coalesced along a row of the part and of the whole. Where the part's width, the whole's
// width and the part's offset are multiples of 4 and both pointers are 16-byte aligned a thread
// moves a float4 (kW = 4), else one float. A kernel rather than cudaMemcpy2DAsync because the
// backward accumulates (dx = beta*dx + slice) and to keep one code path. 8 bytes per element
// (12 accumulating): copy speed for wide parts; narrow parts (a few columns) leave most of a
// block idle, but then the whole op moves only kilobytes.
#include "csrc/ops/concat.h"
#include "kernels/common.cuh"

namespace convnet {

namespace {
constexpr int kThreads = 256;
constexpr int kMaxGridY = 65535;

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15) == 0; }

template <int kW>
struct VecOf {
    using type = float;
};
template <>
struct VecOf<4> {
    using type = float4;
};

__device__ __forceinline__ float blend(float old, float v, float beta) { return beta * old + v; }
__device__ __forceinline__ float4 blend(float4 old, float4 v, float beta) {
    return make_float4(beta * old.x + v.x, beta * old.y + v.y, beta * old.z + v.z,
                       beta * old.w + v.w);
}

// part: (n, width) vectors; whole: (n, total) vectors, the part at column `offset`.
// kToWhole: forward (part -> whole); otherwise backward (whole -> part, blended when kAccumulate).
template <int kW, bool kToWhole, bool kAccumulate>
__global__ void concat_copy_kernel(float* part, float* whole, std::int64_t n, std::int64_t width,
                                   std::int64_t total, std::int64_t offset, float beta) {
    using V = typename VecOf<kW>::type;
    const std::int64_t col = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (col >= width) return;
    V* pv = reinterpret_cast<V*>(part);
    V* wv = reinterpret_cast<V*>(whole);
    for (std::int64_t row = blockIdx.y; row < n; row += gridDim.y) {
        V* p = pv + row * width + col;
        V* w = wv + row * total + offset + col;
        if (kToWhole)
            *w = *p;
        else if (kAccumulate)
            *p = blend(*p, *w, beta);
        else
            *p = *w;
    }
}

template <int kW>
void launch(float* part, float* whole, std::int64_t n, std::int64_t width, std::int64_t total,
            std::int64_t offset, bool to_whole, float beta, cudaStream_t stream) {
    const std::int64_t w = width / kW;
    const dim3 grid(static_cast<unsigned>((w + kThreads - 1) / kThreads),
                    static_cast<unsigned>(n < kMaxGridY ? n : kMaxGridY));
    const std::int64_t t = total / kW, o = offset / kW;
    if (to_whole)
        CONVNET_LAUNCH(grid, kThreads, 0, stream, concat_copy_kernel<kW, true, false>)(
            part, whole, n, w, t, o, beta);
    else if (beta != 0.f)
        CONVNET_LAUNCH(grid, kThreads, 0, stream, concat_copy_kernel<kW, false, true>)(
            part, whole, n, w, t, o, beta);
    else
        CONVNET_LAUNCH(grid, kThreads, 0, stream, concat_copy_kernel<kW, false, false>)(
            part, whole, n, w, t, o, beta);
}

}  // namespace

void concat_copy_cuda(const std::vector<float*>& parts, const std::vector<std::int64_t>& widths,
                      float* whole, std::int64_t n, bool to_whole, float beta, void* stream) {
    CONVNET_CHECK(parts.size() == widths.size(), "concat_copy_cuda: ", parts.size(),
                  " parts but ", widths.size(), " widths");
    std::int64_t total = 0;
    for (auto w : widths) total += w;
    CONVNET_ARG_CHECK(total / kThreads < 0x7fffffff, "concat: rows of ", total,
                      " values exceed the GPU grid");
    if (n == 0 || total == 0) return;
    const cudaStream_t s = cuda::as_stream(stream);
    std::int64_t offset = 0;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        const std::int64_t width = widths[i];
        if (width > 0) {
            const bool vec = width % 4 == 0 && total % 4 == 0 && offset % 4 == 0 &&
                             aligned16(parts[i]) && aligned16(whole);
            if (vec)
                launch<4>(parts[i], whole, n, width, total, offset, to_whole, beta, s);
            else
                launch<1>(parts[i], whole, n, width, total, offset, to_whole, beta, s);
            CONVNET_LAUNCH_CHECK();
        }
        offset += width;
    }
}

}  // namespace convnet
