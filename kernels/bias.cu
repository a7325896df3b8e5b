// bias_add: y (N, size) += b (size), and its backward db = beta*db + sum over the batch of dy.
// Columns are positions within a sample; where size % 4 == 0 and the pointers are 16-byte
// aligned a thread owns a float4 of four columns (kW = 4), otherwise one column (kW = 1).
// Forward: a 2-D grid, x over columns, y over samples (grid-stride beyond 65535): each thread
// loads its bias once and updates its column in the samples of its grid row; coalesced along
// the row. 8 bytes per element (read and write y), the bias comes from L2: copy speed.
// Backward: a block of 32 x 8 threads owns 32 column vectors; thread (c, r) sums samples r,
// r + 8, r + 16, ... of column c in that order, then thread (c, 0) adds the eight partial sums
// in row order and writes db. The order depends only on N, never on scheduling: deterministic
// (and no atomics). Warps read 32 consecutive column vectors of one sample row (128 or 512
// bytes, coalesced); 4 bytes per element of dy: memory-bound, copy speed when size is large.
#include "csrc/ops/bias.h"
#include "kernels/common.cuh"

namespace convnet {

namespace {
constexpr int kThreads = 256;
constexpr int kMaxGridY = 65535;
// The backward block: kCols column vectors by kRows sample phases.
constexpr int kCols = 32;
constexpr int kRows = 8;

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15) == 0; }

template <int kW>
struct VecOf;
template <>
struct VecOf<1> {
    using type = float;
    __device__ static float zero() { return 0.f; }
};
template <>
struct VecOf<4> {
    using type = float4;
    __device__ static float4 zero() { return make_float4(0.f, 0.f, 0.f, 0.f); }
};

__device__ __forceinline__ float add(float a, float b) { return a + b; }
__device__ __forceinline__ float4 add(float4 a, float4 b) {
    return make_float4(a.x + b.x, a.y + b.y, a.z + b.z, a.w + b.w);
}
__device__ __forceinline__ float blend(float old, float sum, float beta) {
    return beta == 0.f ? sum : beta * old + sum;
}
__device__ __forceinline__ float4 blend(float4 old, float4 sum, float beta) {
    return make_float4(blend(old.x, sum.x, beta), blend(old.y, sum.y, beta),
                       blend(old.z, sum.z, beta), blend(old.w, sum.w, beta));
}

// y: (n, cols) vectors of kW floats; b: (cols,).
template <int kW>
__global__ void bias_add_forward_kernel(float* __restrict__ y, const float* __restrict__ b,
                                        std::int64_t n, std::int64_t cols) {
    using V = typename VecOf<kW>::type;
    const std::int64_t col = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x;
    if (col >= cols) return;
    const V bias = reinterpret_cast<const V*>(b)[col];
    V* yv = reinterpret_cast<V*>(y);
    for (std::int64_t s = blockIdx.y; s < n; s += gridDim.y) {
        V* p = yv + s * cols + col;
        *p = add(*p, bias);
    }
}

// dy: (n, cols) vectors of kW floats; db: (cols,). Block (kCols, kRows).
template <int kW>
__global__ void __launch_bounds__(kCols * kRows)
bias_add_backward_kernel(const float* __restrict__ dy, float* __restrict__ db, std::int64_t n,
                         std::int64_t cols, float beta) {
    using V = typename VecOf<kW>::type;
    __shared__ V partial[kRows][kCols];
    const std::int64_t col = blockIdx.x * std::int64_t(kCols) + threadIdx.x;
    const V* g = reinterpret_cast<const V*>(dy);
    V sum = VecOf<kW>::zero();
    if (col < cols) {
#pragma unroll 4
        for (std::int64_t s = threadIdx.y; s < n; s += kRows) sum = add(sum, g[s * cols + col]);
    }
    partial[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
        V total = partial[0][threadIdx.x];
#pragma unroll
        for (int r = 1; r < kRows; ++r) total = add(total, partial[r][threadIdx.x]);
        V* out = reinterpret_cast<V*>(db) + col;
        *out = blend(beta == 0.f ? VecOf<kW>::zero() : *out, total, beta);
    }
}

template <int kW>
void launch_forward(float* y, const float* b, std::int64_t n, std::int64_t size,
                    cudaStream_t stream) {
    const std::int64_t cols = size / kW;
    const dim3 grid(static_cast<unsigned>((cols + kThreads - 1) / kThreads),
                    static_cast<unsigned>(n < kMaxGridY ? n : kMaxGridY));
    CONVNET_LAUNCH(grid, kThreads, 0, stream, bias_add_forward_kernel<kW>)(y, b, n, cols);
}

template <int kW>
void launch_backward(const float* dy, float* db, std::int64_t n, std::int64_t size, float beta,
                     cudaStream_t stream) {
    const std::int64_t cols = size / kW;
    const unsigned grid = static_cast<unsigned>((cols + kCols - 1) / kCols);
    CONVNET_LAUNCH(grid, dim3(kCols, kRows), 0, stream, bias_add_backward_kernel<kW>)(dy, db, n,
                                                                                      cols, beta);
}

void check_grid(std::int64_t size, const char* op) {
    CONVNET_ARG_CHECK(size / kCols < 0x7fffffff, op, ": ", size, " positions exceed the GPU grid");
}

}  // namespace

void bias_add_forward_cuda(float* y, const float* b, std::int64_t n, std::int64_t size,
                           void* stream) {
    if (n == 0 || size == 0) return;
    check_grid(size, "bias_add_forward");
    if (size % 4 == 0 && aligned16(y) && aligned16(b))
        launch_forward<4>(y, b, n, size, cuda::as_stream(stream));
    else
        launch_forward<1>(y, b, n, size, cuda::as_stream(stream));
    CONVNET_LAUNCH_CHECK();
}

void bias_add_backward_cuda(const float* dy, float* db, std::int64_t n, std::int64_t size,
                            float beta, void* stream) {
    if (size == 0) return;
    // n == 0 still writes db = beta*db + 0, as the CPU path does.
    check_grid(size, "bias_add_backward");
    if (size % 4 == 0 && aligned16(dy) && aligned16(db))
        launch_backward<4>(dy, db, n, size, beta, cuda::as_stream(stream));
    else
        launch_backward<1>(dy, db, n, size, beta, cuda::as_stream(stream));
    CONVNET_LAUNCH_CHECK();
}

}  // namespace convnet
