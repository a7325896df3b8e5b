// Fully connected layer on the GPU: three GEMMs through kernels/gemm.cuh, with the operands read
// in place through strides (no transposed copies):
//   forward   y (N, M)  = x (N, K) * w^T       A = x (k-major), B(k, m) = w[m, k] (k-major)
//   data      dx (N, K) = dy (N, M) * w (M, K) A = dy (k-major), B(k=m, j) = w[m, j] (mn-major)
//   weights   dw (M, K) = dy^T * x             A(m, k=n) = dy[n, m], B(k=n, j) = x[n, j] (mn-major)
// Bias and beta are applied in the GEMM's epilogue; db = beta*db + column sums of dy is its own
// small kernel (one thread per output, rows summed in order).
// When a GEMM has too few 128x128 output tiles to fill the GPU (fc6 at batch 128: 32 tiles) and
// a long K, it is split along K into slices written to a workspace and summed in a fixed order by
// splitk_reduce_kernel (deterministic; it also applies bias and beta). FLOPs: 2*N*M*K per GEMM;
// the split adds a read of slices*M*N floats, small next to the operands.
// Also here, shared with conv and local: the split-K reduction and the column sums.
#include "csrc/ops/fc.h"
#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

namespace convnet {

namespace {
using gemm::Frag;
using gemm::MatrixOperand;
using gemm::MatrixTile;

// C (M x N) = A (M x K) * B (K x N) for strided matrices; slice z of a split covers
// k in [z*chunk, min(K, (z+1)*chunk)) and writes ws[z] instead of C.
struct MatmulProblem {
    int M, N, K, chunk;
    MatrixOperand a, b;
    float* c;
    int c_sm, c_sn;
    const float* bias;
    bool bias_rows;
    float beta;
    float* ws;  // split-K partial products (slices, M, N), or null without a split

    struct Loader {
        MatrixTile a, b;
        int k_begin, k_end, tid;
        bool a_kmajor, b_kmajor;

        __device__ Loader(const MatmulProblem& p, int m0, int n0, int z, int tid_) : tid(tid_) {
            a.init(p.a, m0, tid);
            b.init(p.b, n0, tid);
            k_begin = z * p.chunk;
            k_end = min(p.K, k_begin + p.chunk);
            a_kmajor = p.a.kmajor, b_kmajor = p.b.kmajor;
        }
        __device__ void load_a(int k0, Frag& f) const { a.load(k0, k_end, f, tid); }
        __device__ void load_b(int k0, Frag& f) const { b.load(k0, k_end, f, tid); }
    };

    struct Output {
        float* ptr;
        int sm, sn;
        const float* bias_r;
        const float* bias_c;
        float beta;

        __device__ Output(const MatmulProblem& p, int z) {
            if (p.ws) {  // a slice of a split: plain partial products, no bias, no beta
                ptr = p.ws + std::int64_t(z) * p.M * p.N, sm = p.N, sn = 1;
                bias_r = bias_c = nullptr, beta = 0.f;
            } else {
                ptr = p.c, sm = p.c_sm, sn = p.c_sn, beta = p.beta;
                bias_r = p.bias_rows ? p.bias : nullptr;
                bias_c = p.bias_rows ? nullptr : p.bias;
            }
        }
        __device__ int row_offset(int m) const { return m * sm; }
        __device__ int col_offset(int n) const { return n * sn; }
        __device__ float bias_row(int m) const { return bias_r ? __ldg(bias_r + m) : 0.f; }
        __device__ float bias_col(int n) const { return bias_c ? __ldg(bias_c + n) : 0.f; }
    };
};

MatrixOperand matrix(const float* ptr, std::int64_t rows, std::int64_t s_row, std::int64_t s_k) {
    MatrixOperand op;
    op.ptr = ptr, op.rows = int(rows), op.s_row = int(s_row), op.s_k = int(s_k);
    op.kmajor = s_k == 1;
    const bool aligned = reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0;
    op.vec = aligned && (op.kmajor ? s_row % 4 == 0 : s_row == 1 && s_k % 4 == 0);
    return op;
}

gemm::SplitPlan plan_matmul(std::int64_t m, std::int64_t n, std::int64_t k) {
    const std::int64_t tiles =
        std::int64_t(gemm::ceil_div(m, gemm::kBM)) * gemm::ceil_div(n, gemm::kBN);
    return gemm::plan_split_k(tiles, k, gemm::device_info().sms);
}

std::int64_t matmul_workspace(std::int64_t m, std::int64_t n, std::int64_t k) {
    const gemm::SplitPlan plan = plan_matmul(m, n, k);
    return plan.splits > 1 ? plan.splits * m * n : 0;
}

// C (m x n) = beta*C + A * B (+ bias), splitting K when that fills the GPU better.
void matmul(std::int64_t m, std::int64_t n, std::int64_t k, const MatrixOperand& a,
            const MatrixOperand& b, float* c, std::int64_t c_sm, std::int64_t c_sn,
            const float* bias, bool bias_rows, float beta, float* workspace,
            MathPrecision precision, cudaStream_t stream) {
    if (m == 0 || n == 0) return;
    const gemm::SplitPlan plan = plan_matmul(m, n, k);
    const bool split = plan.splits > 1;
    CONVNET_CHECK(!split || workspace, "fc: the split-K workspace is missing");
    gemm::check_int32(split ? plan.splits * m * n : m * n, "fc", "an output");
    MatmulProblem p;
    p.M = int(m), p.N = int(n), p.K = int(k), p.chunk = int(split ? plan.chunk : k);
    p.a = a, p.b = b;
    p.c = c, p.c_sm = int(c_sm), p.c_sn = int(c_sn);
    p.bias = bias, p.bias_rows = bias_rows, p.beta = beta;
    p.ws = split ? workspace : nullptr;
    gemm::launch_igemm(p, unsigned(plan.splits), precision, stream);
    if (split)
        gemm::splitk_reduce_cuda(workspace, plan.splits, m, n, c, c_sm, c_sn, bias, bias_rows,
                                 beta, stream);
}

constexpr int kReduceThreads = 256;

__global__ void splitk_reduce_kernel(const float* __restrict__ ws, int splits, std::int64_t m,
                                     std::int64_t n, float* out, std::int64_t c_sm,
                                     std::int64_t c_sn, const float* __restrict__ bias,
                                     bool bias_rows, float beta) {
    const std::int64_t total = m * n;
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < total;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        float s = 0.f;
        for (int z = 0; z < splits; ++z) s += ws[z * total + i];
        const std::int64_t r = i / n, c = i - r * n;
        if (bias) s += bias[bias_rows ? r : c];
        float* dst = out + r * c_sm + c * c_sn;
        *dst = beta == 0.f ? s : fmaf(beta, *dst, s);
    }
}

__global__ void column_sums_kernel(const float* __restrict__ a, std::int64_t rows,
                                   std::int64_t cols, float* out, float beta) {
    for (std::int64_t c = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; c < cols;
         c += std::int64_t(gridDim.x) * blockDim.x) {
        float s = 0.f;
        for (std::int64_t r = 0; r < rows; ++r) s += a[r * cols + c];
        out[c] = beta == 0.f ? s : fmaf(beta, out[c], s);
    }
}

}  // namespace

namespace gemm {

void splitk_reduce_cuda(const float* ws, int splits, std::int64_t m, std::int64_t n, float* out,
                        std::int64_t c_sm, std::int64_t c_sn, const float* bias, bool bias_rows,
                        float beta, cudaStream_t stream) {
    if (m * n == 0) return;
    CONVNET_LAUNCH(cuda::grid_for(m * n, kReduceThreads), kReduceThreads, 0, stream,
                   splitk_reduce_kernel)(ws, splits, m, n, out, c_sm, c_sn, bias, bias_rows, beta);
    CONVNET_LAUNCH_CHECK();
}

void column_sums_cuda(const float* a, std::int64_t rows, std::int64_t cols, float* out,
                      float beta, cudaStream_t stream) {
    if (cols == 0) return;
    CONVNET_LAUNCH(cuda::grid_for(cols, kReduceThreads), kReduceThreads, 0, stream,
                   column_sums_kernel)(a, rows, cols, out, beta);
    CONVNET_LAUNCH_CHECK();
}

}  // namespace gemm

std::int64_t fc_workspace_cuda(const FcGeometry& g) {
    return std::max({matmul_workspace(g.n, g.m, g.k), matmul_workspace(g.n, g.k, g.m),
                     matmul_workspace(g.m, g.k, g.n)});
}

void fc_forward_cuda(const float* x, const float* w, const float* b, float* y,
                     const FcGeometry& g, MathPrecision precision, float* workspace,
                     void* stream) {
    gemm::check_int32(g.n * g.k, "fc_forward", "x");
    gemm::check_int32(g.m * g.k, "fc_forward", "w");
    // y (n x m) = x (n x k) * w^T: A(i, k) = x[i*K + k], B's row j (an output) = w[j*K + k].
    matmul(g.n, g.m, g.k, matrix(x, g.n, g.k, 1), matrix(w, g.m, g.k, 1), y, g.m, 1, b,
           /*bias_rows=*/false, 0.f, workspace, precision, cuda::as_stream(stream));
}

void fc_backward_cuda(const float* x, const float* w, const float* dy, float* dx, float* dw,
                      float* db, const FcGeometry& g, float beta, MathPrecision precision,
                      float* workspace, void* stream) {
    gemm::check_int32(g.n * g.k, "fc_backward", "x");
    gemm::check_int32(g.m * g.k, "fc_backward", "w");
    const cudaStream_t s = cuda::as_stream(stream);
    // dx (n x k) = dy (n x m) * w (m x k): B's row j (an input) at w[k_index*K + j].
    if (dx)
        matmul(g.n, g.k, g.m, matrix(dy, g.n, g.m, 1), matrix(w, g.k, 1, g.k), dx, g.k, 1,
               nullptr, false, beta, workspace, precision, s);
    // dw (m x k) = dy^T (m x n) * x (n x k): A(j, i) = dy[i*M + j], B's row j = x[i*K + j].
    if (dw)
        matmul(g.m, g.k, g.n, matrix(dy, g.m, 1, g.m), matrix(x, g.k, 1, g.k), dw, g.k, 1,
               nullptr, false, beta, workspace, precision, s);
    if (db) gemm::column_sums_cuda(dy, g.n, g.m, db, beta, s);
}

}  // namespace convnet
