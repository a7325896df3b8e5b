// Softmax, its backward pass, the softmax log-loss and cost.logreg on probabilities.
// Rows are independent: a group of kGroup threads owns one row of k classes, a warp (kGroup =
// 32, eight rows per 256-thread block) for short rows such as CIFAR's 10 classes, the whole block
// (kGroup = 256) for long ones such as ImageNet's 1000. Each thread strides over the row; max,
// sum and counts are reduced with warp shuffles, then (block groups) across the block's warps
// through shared memory, always in the same order, so results do not depend on scheduling.
// Traffic: softmax reads x three times (max, sum, write pass; the re-reads hit L1/L2) and writes
// probs once; at 128 x 1000 this is ~1 MB, a few microseconds: launch-bound, not worth tiling.
// The loss and error counts: each row writes its own loss (double) and the number of classes
// strictly above its label; one more single-block kernel sums those in a fixed order and the
// three totals come back with one small copy, the only host synchronisation here. Labels arrive
// in host memory (as on the CPU path) and go up with one asynchronous copy into the workspace.
#include <cmath>
#include <type_traits>

#include "csrc/ops/softmax.h"
#include "kernels/common.cuh"

namespace convnet {

namespace {
constexpr int kBlock = 256;
constexpr int kWarpsPerBlock = kBlock / 32;
// Rows up to this long get one warp each; longer rows a whole block.
constexpr std::int64_t kWarpRowMax = 128;

struct Sum {
    template <typename T>
    __device__ T operator()(T a, T b) const { return a + b; }
};
struct Max {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// Reduces v over the kGroup threads that share a row (a warp, or the whole block). Every thread
// of the group gets the result. Block groups go through shared memory in warp order, so the
// result is deterministic. Block groups must call this from uniform control flow.
template <int kGroup, typename T, typename Op>
__device__ T group_reduce(T v, Op op) {
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
        v = op(v, __shfl_xor_sync(0xffffffffu, v, offset));
    if constexpr (kGroup == 32) {
        return v;
    } else {
        static_assert(kGroup == kBlock, "a group is a warp or the whole block");
        __shared__ T partial[kWarpsPerBlock];
        __syncthreads();  // the previous reduction's readers are done with `partial`
        if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
        __syncthreads();
        T r = partial[0];
#pragma unroll
        for (int w = 1; w < kWarpsPerBlock; ++w) r = op(r, partial[w]);
        return r;
    }
}

// The row a group owns and the thread's lane within it.
template <int kGroup>
__device__ std::int64_t group_row() {
    return std::int64_t(blockIdx.x) * (kBlock / kGroup) + threadIdx.x / kGroup;
}
template <int kGroup>
__device__ int group_lane() { return threadIdx.x % kGroup; }

// Max and sum of exp(x - max) over one row of k values.
template <int kGroup>
__device__ void row_max_sum(const float* xr, int k, int lane, float* max, float* sum) {
    float m = -INFINITY;
    for (int j = lane; j < k; j += kGroup) m = fmaxf(m, xr[j]);
    m = group_reduce<kGroup>(m, Max{});
    float s = 0.f;
    for (int j = lane; j < k; j += kGroup) s += expf(xr[j] - m);
    *max = m;
    *sum = group_reduce<kGroup>(s, Sum{});
}

// x, probs: (n, k) row-major.
template <int kGroup>
__global__ void __launch_bounds__(kBlock)
softmax_forward_kernel(const float* __restrict__ x, float* __restrict__ probs, std::int64_t n,
                       int k) {
    const std::int64_t row = group_row<kGroup>();
    if (row >= n) return;  // whole groups only: with kGroup = kBlock the grid has n blocks
    const int lane = group_lane<kGroup>();
    const float* xr = x + row * k;
    float m, s;
    row_max_sum<kGroup>(xr, k, lane, &m, &s);
    const float inv = 1.f / s;
    float* pr = probs + row * k;
    for (int j = lane; j < k; j += kGroup) pr[j] = expf(xr[j] - m) * inv;
}

// probs, dy, dx: (n, k). dx = beta*dx + probs * (dy - <dy, probs>), row by row.
template <int kGroup>
__global__ void __launch_bounds__(kBlock)
softmax_backward_kernel(const float* __restrict__ probs, const float* __restrict__ dy,
                        float* __restrict__ dx, std::int64_t n, int k, float beta) {
    const std::int64_t row = group_row<kGroup>();
    if (row >= n) return;
    const int lane = group_lane<kGroup>();
    const float* yr = probs + row * k;
    const float* gr = dy + row * k;
    float dot = 0.f;
    for (int j = lane; j < k; j += kGroup) dot += gr[j] * yr[j];
    dot = group_reduce<kGroup>(dot, Sum{});
    float* dr = dx + row * k;
    for (int j = lane; j < k; j += kGroup) {
        const float v = yr[j] * (gr[j] - dot);
        dr[j] = beta == 0.f ? v : beta * dr[j] + v;
    }
}

// x, probs, dx: (n, k); labels: (n,) on the device. Per row: probs, dx = probs - onehot (when dx
// is given), row_loss = lse - x[label] and row_above = #{j : x[j] > x[label]}.
template <int kGroup>
__global__ void __launch_bounds__(kBlock)
softmax_logloss_kernel(const float* __restrict__ x, const std::int32_t* __restrict__ labels,
                       float* __restrict__ probs, float* __restrict__ dx, std::int64_t n, int k,
                       double* __restrict__ row_loss, int* __restrict__ row_above) {
    const std::int64_t row = group_row<kGroup>();
    if (row >= n) return;
    const int lane = group_lane<kGroup>();
    const float* xr = x + row * k;
    const int label = labels[row];
    const float xl = xr[label];
    int above = 0;
    for (int j = lane; j < k; j += kGroup) above += xr[j] > xl;
    above = group_reduce<kGroup>(above, Sum{});
    float m, s;
    row_max_sum<kGroup>(xr, k, lane, &m, &s);
    const float inv = 1.f / s;
    float* pr = probs + row * k;
    float* dr = dx ? dx + row * k : nullptr;
    for (int j = lane; j < k; j += kGroup) {
        const float p = expf(xr[j] - m) * inv;
        pr[j] = p;
        if (dr) dr[j] = j == label ? p - 1.f : p;
    }
    if (lane == 0) {
        const float lse = m + logf(s);  // in float, as the CPU path computes it
        row_loss[row] = double(lse) - double(xl);
        row_above[row] = above;
    }
}

// probs, dprobs: (n, k); labels on the device. Per row: row_loss = -log p[label], row_above =
// #{j : p[j] > p[label]}, and (when dprobs is given) dprobs = beta*dprobs + g with g =
// -scale / p[label] at the label and 0 elsewhere.
template <int kGroup>
__global__ void __launch_bounds__(kBlock)
logreg_cost_kernel(const float* __restrict__ probs, const std::int32_t* __restrict__ labels,
                   float* __restrict__ dprobs, std::int64_t n, int k, double scale, float beta,
                   double* __restrict__ row_loss, int* __restrict__ row_above) {
    const std::int64_t row = group_row<kGroup>();
    if (row >= n) return;
    const int lane = group_lane<kGroup>();
    const float* pr = probs + row * k;
    const int label = labels[row];
    const float pl = pr[label];
    int above = 0;
    for (int j = lane; j < k; j += kGroup) above += pr[j] > pl;
    above = group_reduce<kGroup>(above, Sum{});
    if (dprobs) {
        const float g_label = float(-scale / double(pl));
        float* dr = dprobs + row * k;
        for (int j = lane; j < k; j += kGroup) {
            const float g = j == label ? g_label : 0.f;
            dr[j] = beta == 0.f ? g : beta * dr[j] + g;
        }
    }
    if (lane == 0) {
        row_loss[row] = -log(double(pl));
        row_above[row] = above;
    }
}

struct Totals {
    double loss;
    long long top1;
    long long topk;
};

// One block sums the per-row results in a fixed order (thread t takes rows t, t + 256, ...;
// then the block reduction): deterministic for a given n.
__global__ void __launch_bounds__(kBlock)
logloss_totals_kernel(const double* __restrict__ row_loss, const int* __restrict__ row_above,
                      std::int64_t n, int topk, Totals* __restrict__ out) {
    double loss = 0.0;
    long long top1 = 0, topk_err = 0;
    for (std::int64_t i = threadIdx.x; i < n; i += kBlock) {
        loss += row_loss[i];
        top1 += row_above[i] >= 1;
        topk_err += row_above[i] >= topk;
    }
    loss = group_reduce<kBlock>(loss, Sum{});
    top1 = group_reduce<kBlock>(top1, Sum{});
    topk_err = group_reduce<kBlock>(topk_err, Sum{});
    if (threadIdx.x == 0) *out = Totals{loss, top1, topk_err};
}

// The workspace: labels, per-row losses and counts, and the totals, each 16-byte aligned.
struct Workspace {
    std::int32_t* labels;
    double* row_loss;
    int* row_above;
    Totals* totals;
};

std::size_t round16(std::size_t bytes) { return (bytes + 15) / 16 * 16; }

Workspace carve(void* base, std::int64_t n) {
    char* p = static_cast<char*>(base);
    Workspace w;
    w.labels = reinterpret_cast<std::int32_t*>(p);
    p += round16(sizeof(std::int32_t) * n);
    w.row_loss = reinterpret_cast<double*>(p);
    p += round16(sizeof(double) * n);
    w.row_above = reinterpret_cast<int*>(p);
    p += round16(sizeof(int) * n);
    w.totals = reinterpret_cast<Totals*>(p);
    return w;
}

void check_k(std::int64_t k, const char* op) {
    CONVNET_ARG_CHECK(k >= 1 && k <= 0x7fffffff, op, ": rows of ", k,
                      " classes are outside the GPU path's [1, 2^31) range");
}

// Launches kernel<32> or kernel<kBlock> on the grid that gives each of n rows its group.
template <typename Launch>
void for_rows(std::int64_t n, std::int64_t k, Launch&& launch) {
    if (k <= kWarpRowMax) {
        const std::int64_t blocks = (n + kWarpsPerBlock - 1) / kWarpsPerBlock;
        launch(std::integral_constant<int, 32>{}, static_cast<unsigned>(blocks));
    } else {
        launch(std::integral_constant<int, kBlock>{}, static_cast<unsigned>(n));
    }
}

void check_rows(std::int64_t n, const char* op) {
    CONVNET_ARG_CHECK(n <= 0x7fffffff, op, ": ", n, " rows exceed the GPU grid");
}

// Copies the labels up (before) and the totals down (after `rows` ran).
template <typename Rows>
LogLossResult with_totals(const std::int32_t* labels, std::int64_t n, int topk, void* workspace,
                          cudaStream_t stream, Rows&& rows) {
    const Workspace w = carve(workspace, n);
    CONVNET_CUDA_CHECK(cudaMemcpyAsync(w.labels, labels, sizeof(std::int32_t) * n,
                                       cudaMemcpyHostToDevice, stream));
    rows(w);
    CONVNET_LAUNCH(1, kBlock, 0, stream, logloss_totals_kernel)(w.row_loss, w.row_above, n, topk,
                                                                w.totals);
    CONVNET_LAUNCH_CHECK();
    Totals t;
    CONVNET_CUDA_CHECK(
        cudaMemcpyAsync(&t, w.totals, sizeof(Totals), cudaMemcpyDeviceToHost, stream));
    CONVNET_CUDA_CHECK(cudaStreamSynchronize(stream));
    return LogLossResult{t.loss, std::int64_t(t.top1), std::int64_t(t.topk)};
}

}  // namespace

void softmax_forward_cuda(const float* x, float* probs, std::int64_t n, std::int64_t k,
                          void* stream) {
    if (n == 0) return;
    check_k(k, "softmax_forward");
    check_rows(n, "softmax_forward");
    for_rows(n, k, [&](auto group, unsigned blocks) {
        CONVNET_LAUNCH(blocks, kBlock, 0, cuda::as_stream(stream),
                       softmax_forward_kernel<decltype(group)::value>)(x, probs, n, int(k));
    });
    CONVNET_LAUNCH_CHECK();
}

void softmax_backward_cuda(const float* probs, const float* dy, float* dx, std::int64_t n,
                           std::int64_t k, float beta, void* stream) {
    if (n == 0) return;
    check_k(k, "softmax_backward");
    check_rows(n, "softmax_backward");
    for_rows(n, k, [&](auto group, unsigned blocks) {
        CONVNET_LAUNCH(blocks, kBlock, 0, cuda::as_stream(stream),
                       softmax_backward_kernel<decltype(group)::value>)(probs, dy, dx, n, int(k),
                                                                        beta);
    });
    CONVNET_LAUNCH_CHECK();
}

std::size_t logloss_workspace_bytes(std::int64_t n) {
    return round16(sizeof(std::int32_t) * n) + round16(sizeof(double) * n) +
           round16(sizeof(int) * n) + round16(sizeof(Totals));
}

LogLossResult softmax_logloss_cuda(const float* x, const std::int32_t* labels, float* probs,
                                   float* dx, std::int64_t n, std::int64_t k, int topk,
                                   void* workspace, void* stream) {
    if (n == 0) return {};
    check_k(k, "softmax_logloss");
    check_rows(n, "softmax_logloss");
    const cudaStream_t s = cuda::as_stream(stream);
    return with_totals(labels, n, topk, workspace, s, [&](const Workspace& w) {
        for_rows(n, k, [&](auto group, unsigned blocks) {
            CONVNET_LAUNCH(blocks, kBlock, 0, s, softmax_logloss_kernel<decltype(group)::value>)(
                x, w.labels, probs, dx, n, int(k), w.row_loss, w.row_above);
        });
        CONVNET_LAUNCH_CHECK();
    });
}

LogLossResult logreg_cost_cuda(const float* probs, const std::int32_t* labels, float* dprobs,
                               std::int64_t n, std::int64_t k, double scale, int topk,
                               float beta, void* workspace, void* stream) {
    if (n == 0) return {};
    check_k(k, "logreg_cost");
    check_rows(n, "logreg_cost");
    const cudaStream_t s = cuda::as_stream(stream);
    return with_totals(labels, n, topk, workspace, s, [&](const Workspace& w) {
        for_rows(n, k, [&](auto group, unsigned blocks) {
            CONVNET_LAUNCH(blocks, kBlock, 0, s, logreg_cost_kernel<decltype(group)::value>)(
                probs, w.labels, dprobs, n, int(k), scale, beta, w.row_loss, w.row_above);
        });
        CONVNET_LAUNCH_CHECK();
    });
}

}  // namespace convnet
