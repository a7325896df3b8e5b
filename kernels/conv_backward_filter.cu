// Convolution backward filter on the GPU as an implicit GEMM (kernels/gemm.cuh):
//   dW_g (F/G x C/G*KH*KW) = dy_g (F/G x N*OH*OW) * cols_g^T,
// K running over every image and output position. Both operands are loaded k-major (along output
// positions): each thread decodes its 4 k = (image, oy, ox) once per step and steps through them;
// A rows are filters of dy, B rows are patch entries (c, ky, kx) decoded once per block, gathered
// from x with out-of-image pixels read as zero.
// K is long (N*OH*OW: 93,312 for AlexNet conv2 at batch 128) and the output small (128 x 1200 per
// group), so K is split into slices (blockIdx.z = group*slices + slice) to fill the GPU; each
// slice writes its partial dW to a workspace and splitk_reduce_cuda (kernels/fc.cu) sums them in
// slice order and applies beta: deterministic, no float atomics. db = beta*db + sum over images
// and positions of dy is a separate kernel, one block per filter, with a fixed reduction tree.
// FLOPs 2*N*OH*OW*F*C/G*KH*KW; traffic: dy and x read about once per 128-wide tile of the other.
#include "csrc/ops/conv.h"
#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

namespace convnet {

namespace {
using gemm::Frag;

constexpr int kOutside = -(1 << 29);  // a window offset that keeps every pixel outside

struct ConvBackwardFilterProblem {
    int M, N;  // F/G filters, C/G*KH*KW patch entries
    int K;     // N*OH*OW
    int slices, chunk;
    const float* x;
    const float* dy;
    float* dw;
    float* ws;  // (slices, F, C/G*KH*KW) partial sums when slices > 1
    float beta;
    int c, h, w_, f, cg, fg, oh, ow, positions, kw, khkw, sh, sw, ph, pw;

    struct Loader {
        const float* x;
        const float* dy;
        int dyrow[2];                  // (g*F/G + f)*OH*OW of the two filter rows, -1 past the last
        int xoff[2], kyp[2], kxp[2];   // the two patch rows: channel offset, ky - ph, kx - pw
        int h, w, chw, positions, fp, oh, ow, sh, sw;
        int k_begin, k_end, tid;
        bool a_kmajor, b_kmajor;

        __device__ Loader(const ConvBackwardFilterProblem& p, int m0, int n0, int z, int tid_)
            : x(p.x), dy(p.dy), h(p.h), w(p.w_), chw(p.c * p.h * p.w_), positions(p.positions),
              fp(p.f * p.positions), oh(p.oh), ow(p.ow), sh(p.sh), sw(p.sw), tid(tid_),
              a_kmajor(true), b_kmajor(true) {
            const int g = z / p.slices, slice = z - g * p.slices;
            k_begin = slice * p.chunk;
            k_end = min(p.K, k_begin + p.chunk);
#pragma unroll
            for (int i = 0; i < 2; ++i) {
                const int f = m0 + gemm::km_row(tid, i);
                dyrow[i] = f < p.M ? (g * p.fg + f) * p.positions : -1;
                const int n = n0 + gemm::km_row(tid, i);
                if (n < p.N) {
                    const int ch = n / p.khkw, r = n - ch * p.khkw;
                    const int ky = r / p.kw, kx = r - ky * p.kw;
                    xoff[i] = (g * p.cg + ch) * p.h * p.w_;
                    kyp[i] = ky - p.ph;
                    kxp[i] = kx - p.pw;
                } else {
                    xoff[i] = 0, kyp[i] = kOutside, kxp[i] = kOutside;
                }
            }
        }

        // A(f, k) = dy[image, g*F/G + f, pos] with k = image*OH*OW + pos.
        __device__ void load_a(int k0, Frag& fr) const {
            const int k = k0 + gemm::km_k(tid);
            int img = k / positions, pos = k - img * positions;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const bool ok = k + j < k_end;
                const float* src = dy + img * fp + pos;
#pragma unroll
                for (int i = 0; i < 2; ++i)
                    fr.v[i][j] = ok && dyrow[i] >= 0 ? __ldg(src + dyrow[i]) : 0.f;
                if (++pos == positions) pos = 0, ++img;
            }
        }

        // B(n, k) = x[image, g*C/G + c, oy*sh - ph + ky, ox*sw - pw + kx], n = (c, ky, kx).
        __device__ void load_b(int k0, Frag& fr) const {
            const int k = k0 + gemm::km_k(tid);
            int img = k / positions;
            int oy = (k - img * positions) / ow;
            int ox = k - img * positions - oy * ow;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                const bool ok = k + j < k_end;
                const float* src = x + img * chw;
#pragma unroll
                for (int i = 0; i < 2; ++i) {
                    const int iy = oy * sh + kyp[i], ix = ox * sw + kxp[i];
                    fr.v[i][j] = ok && unsigned(iy) < unsigned(h) && unsigned(ix) < unsigned(w)
                                     ? __ldg(src + xoff[i] + iy * w + ix)
                                     : 0.f;
                }
                if (++ox == ow) {
                    ox = 0;
                    if (++oy == oh) oy = 0, ++img;
                }
            }
        }
    };

    struct Output {
        float* ptr;
        float beta;
        int group_row, patch;

        __device__ Output(const ConvBackwardFilterProblem& p, int z) : patch(p.N) {
            const int g = z / p.slices, slice = z - g * p.slices;
            group_row = g * p.fg;
            if (p.slices > 1) {
                ptr = p.ws + std::int64_t(slice) * p.f * p.N, beta = 0.f;
            } else {
                ptr = p.dw, beta = p.beta;
            }
        }
        __device__ int row_offset(int m) const { return (group_row + m) * patch; }
        __device__ int col_offset(int n) const { return n; }
        __device__ float bias_row(int) const { return 0.f; }
        __device__ float bias_col(int) const { return 0.f; }
    };
};

gemm::SplitPlan plan(const ConvGeometry& g) {
    const std::int64_t tiles = std::int64_t(gemm::ceil_div(g.filters_per_group(), gemm::kBM)) *
                               gemm::ceil_div(g.patch_size(), gemm::kBN) * g.groups;
    gemm::SplitPlan p = gemm::plan_split_k(tiles, g.n * g.oh * g.ow, gemm::device_info().sms);
    // blockIdx.z holds groups * slices.
    while (p.splits > 1 && std::int64_t(p.splits) * g.groups > 65535) {
        p.chunk *= 2;
        p.splits = int((g.n * g.oh * g.ow + p.chunk - 1) / p.chunk);
    }
    return p;
}

constexpr int kBiasThreads = 256;

// db[f] = beta*db[f] + sum over images and positions of dy[image, f, pos]; one block per filter.
__global__ void conv_bias_grad_kernel(const float* __restrict__ dy, float* db, int images,
                                      int filters, int positions, float beta) {
    const int f = blockIdx.x;
    float s = 0.f;
    for (int img = 0; img < images; ++img) {
        const float* row = dy + (std::int64_t(img) * filters + f) * positions;
        for (int pos = threadIdx.x; pos < positions; pos += blockDim.x) s += row[pos];
    }
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_xor_sync(0xffffffffu, s, offset);
    __shared__ float warp_sums[kBiasThreads / 32];
    if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = s;
    __syncthreads();
    if (threadIdx.x == 0) {
        float total = 0.f;
        for (int i = 0; i < kBiasThreads / 32; ++i) total += warp_sums[i];
        db[f] = beta == 0.f ? total : fmaf(beta, db[f], total);
    }
}

}  // namespace

std::int64_t conv_backward_filter_workspace_cuda(const ConvGeometry& g) {
    const gemm::SplitPlan p = plan(g);
    return p.splits > 1 ? p.splits * g.f * g.patch_size() : 0;
}

void conv_backward_filter_cuda(const float* x, const float* dy, float* dw, float* db,
                               const ConvGeometry& g, float beta, float* workspace,
                               MathPrecision precision, void* stream) {
    const char* op = "conv_backward_filter";
    const cudaStream_t s = cuda::as_stream(stream);
    gemm::check_int32(g.n * g.c * g.h * g.w, op, "x");
    gemm::check_int32(g.n * g.f * g.oh * g.ow, op, "dy");
    if (dw) {
        const gemm::SplitPlan sp = plan(g);
        CONVNET_CHECK(sp.splits == 1 || workspace, op, ": the split-K workspace is missing");
        gemm::check_int32(std::int64_t(sp.splits) * g.f * g.patch_size(), op, "the workspace");
        ConvBackwardFilterProblem p;
        p.M = int(g.filters_per_group()), p.N = int(g.patch_size()), p.K = int(g.n * g.oh * g.ow);
        p.slices = sp.splits, p.chunk = int(sp.chunk);
        p.x = x, p.dy = dy, p.dw = dw, p.ws = workspace, p.beta = beta;
        p.c = int(g.c), p.h = int(g.h), p.w_ = int(g.w), p.f = int(g.f);
        p.cg = int(g.channels_per_group()), p.fg = int(g.filters_per_group());
        p.oh = int(g.oh), p.ow = int(g.ow), p.positions = int(g.oh * g.ow);
        p.kw = int(g.kw), p.khkw = int(g.kh * g.kw);
        p.sh = g.stride_h, p.sw = g.stride_w, p.ph = g.pad_h, p.pw = g.pad_w;
        gemm::launch_igemm(p, unsigned(g.groups * sp.splits), precision, s);
        if (sp.splits > 1)
            gemm::splitk_reduce_cuda(workspace, sp.splits, g.f, g.patch_size(), dw,
                                     g.patch_size(), 1, nullptr, false, beta, s);
    }
    if (db && g.f > 0) {
        CONVNET_LAUNCH(unsigned(g.f), kBiasThreads, 0, s, conv_bias_grad_kernel)(
            dy, db, int(g.n), int(g.f), int(g.oh * g.ow), beta);
        CONVNET_LAUNCH_CHECK();
    }
}

}  // namespace convnet
