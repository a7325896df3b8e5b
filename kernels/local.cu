// Locally connected layer on the GPU (cuda-convnet's type=local): correctness first, one thread
// per output element in grid-stride loops, each a direct sum in a fixed order (deterministic, no
// atomics). Layouts as ops/local.h: x (N, C, H, W); w (OH, OW, F, C/G, KH, KW); b (F, OH, OW);
// y (N, F, OH, OW). Always FP32 on the CUDA cores (more accurate than any requested precision).
//   forward: thread per y element, output position fastest (y writes and x reads coalesce;
//            w rows are read sequentially by each thread, through L1);
//   data:    thread per dx pixel, gathering every (ky, kx, f) whose window covers it;
//   filter:  thread per dw element, summing over the batch;
//   bias:    column sums of dy viewed as (N, F*OH*OW) (kernels/fc.cu).
// Local layers are small in the nets we run (no filter sharing: the weights dominate, and every
// weight is used N times per pass), so these are bandwidth-bound on w and fine at that.
#include "csrc/ops/local.h"
#include "kernels/common.cuh"
#include "kernels/gemm.cuh"

namespace convnet {

namespace {
constexpr int kThreads = 256;

struct LocalDims {
    int n, c, h, w, f, kh, kw, oh, ow, sh, sw, ph, pw, cg, fg, positions, khkw;
};

LocalDims dims_of(const ConvGeometry& g) {
    LocalDims d;
    d.n = int(g.n), d.c = int(g.c), d.h = int(g.h), d.w = int(g.w), d.f = int(g.f);
    d.kh = int(g.kh), d.kw = int(g.kw), d.oh = int(g.oh), d.ow = int(g.ow);
    d.sh = g.stride_h, d.sw = g.stride_w, d.ph = g.pad_h, d.pw = g.pad_w;
    d.cg = int(g.channels_per_group()), d.fg = int(g.filters_per_group());
    d.positions = d.oh * d.ow, d.khkw = d.kh * d.kw;
    return d;
}

__global__ void local_forward_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                     const float* __restrict__ b, float* __restrict__ y,
                                     LocalDims d) {
    const std::int64_t total = std::int64_t(d.n) * d.f * d.positions;
    for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
         idx += std::int64_t(gridDim.x) * blockDim.x) {
        const int pos = int(idx % d.positions);
        const int f = int((idx / d.positions) % d.f);
        const int img = int(idx / (std::int64_t(d.positions) * d.f));
        const int oy = pos / d.ow, ox = pos - oy * d.ow;
        const int grp = f / d.fg;
        const float* bank = w + (std::int64_t(pos) * d.f + f) * d.cg * d.khkw;
        const float* xg = x + (std::int64_t(img) * d.c + grp * d.cg) * d.h * d.w;
        float s = 0.f;
        for (int ch = 0; ch < d.cg; ++ch)
            for (int ky = 0; ky < d.kh; ++ky) {
                const int iy = oy * d.sh - d.ph + ky;
                if (iy < 0 || iy >= d.h) continue;
                for (int kx = 0; kx < d.kw; ++kx) {
                    const int ix = ox * d.sw - d.pw + kx;
                    if (ix < 0 || ix >= d.w) continue;
                    s = fmaf(bank[(ch * d.kh + ky) * d.kw + kx],
                             xg[(std::int64_t(ch) * d.h + iy) * d.w + ix], s);
                }
            }
        y[idx] = b ? s + b[std::int64_t(f) * d.positions + pos] : s;
    }
}

__global__ void local_backward_data_kernel(const float* __restrict__ w,
                                           const float* __restrict__ dy, float* dx, LocalDims d,
                                           float beta) {
    const std::int64_t total = std::int64_t(d.n) * d.c * d.h * d.w;
    for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
         idx += std::int64_t(gridDim.x) * blockDim.x) {
        const int ix = int(idx % d.w);
        const int iy = int((idx / d.w) % d.h);
        const int ch = int((idx / (std::int64_t(d.w) * d.h)) % d.c);
        const int img = int(idx / (std::int64_t(d.w) * d.h * d.c));
        const int grp = ch / d.cg, c = ch - grp * d.cg;
        float s = 0.f;
        for (int ky = 0; ky < d.kh; ++ky) {
            const int ty = iy + d.ph - ky;  // oy * sh
            if (ty < 0 || ty % d.sh) continue;
            const int oy = ty / d.sh;
            if (oy >= d.oh) continue;
            for (int kx = 0; kx < d.kw; ++kx) {
                const int tx = ix + d.pw - kx;
                if (tx < 0 || tx % d.sw) continue;
                const int ox = tx / d.sw;
                if (ox >= d.ow) continue;
                const int pos = oy * d.ow + ox;
                for (int fi = 0; fi < d.fg; ++fi) {
                    const int f = grp * d.fg + fi;
                    const float wv = w[((std::int64_t(pos) * d.f + f) * d.cg + c) * d.khkw +
                                       ky * d.kw + kx];
                    s = fmaf(wv, dy[(std::int64_t(img) * d.f + f) * d.positions + pos], s);
                }
            }
        }
        dx[idx] = beta == 0.f ? s : fmaf(beta, dx[idx], s);
    }
}

__global__ void local_backward_filter_kernel(const float* __restrict__ x,
                                             const float* __restrict__ dy, float* dw, LocalDims d,
                                             float beta) {
    const std::int64_t total = std::int64_t(d.positions) * d.f * d.cg * d.khkw;
    for (std::int64_t idx = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; idx < total;
         idx += std::int64_t(gridDim.x) * blockDim.x) {
        const int r = int(idx % d.khkw);
        const int c = int((idx / d.khkw) % d.cg);
        const int f = int((idx / (std::int64_t(d.khkw) * d.cg)) % d.f);
        const int pos = int(idx / (std::int64_t(d.khkw) * d.cg * d.f));
        const int ky = r / d.kw, kx = r - ky * d.kw;
        const int oy = pos / d.ow, ox = pos - oy * d.ow;
        const int iy = oy * d.sh - d.ph + ky, ix = ox * d.sw - d.pw + kx;
        const int ch = (f / d.fg) * d.cg + c;
        float s = 0.f;
        if (iy >= 0 && iy < d.h && ix >= 0 && ix < d.w)
            for (int img = 0; img < d.n; ++img)
                s = fmaf(dy[(std::int64_t(img) * d.f + f) * d.positions + pos],
                         x[((std::int64_t(img) * d.c + ch) * d.h + iy) * d.w + ix], s);
        dw[idx] = beta == 0.f ? s : fmaf(beta, dw[idx], s);
    }
}

}  // namespace

void local_forward_cuda(const float* x, const float* w, const float* b, float* y,
                        const ConvGeometry& g, void* stream) {
    const std::int64_t total = g.n * g.f * g.oh * g.ow;
    if (total == 0) return;
    CONVNET_LAUNCH(cuda::grid_for(total, kThreads), kThreads, 0, cuda::as_stream(stream),
                   local_forward_kernel)(x, w, b, y, dims_of(g));
    CONVNET_LAUNCH_CHECK();
}

void local_backward_cuda(const float* x, const float* w, const float* dy, float* dx, float* dw,
                         float* db, const ConvGeometry& g, float beta, void* stream) {
    const cudaStream_t s = cuda::as_stream(stream);
    const LocalDims d = dims_of(g);
    if (dx) {
        const std::int64_t total = g.n * g.c * g.h * g.w;
        if (total > 0) {
            CONVNET_LAUNCH(cuda::grid_for(total, kThreads), kThreads, 0, s,
                           local_backward_data_kernel)(w, dy, dx, d, beta);
            CONVNET_LAUNCH_CHECK();
        }
    }
    if (dw) {
        const std::int64_t total = g.oh * g.ow * g.f * g.patch_size();
        if (total > 0) {
            CONVNET_LAUNCH(cuda::grid_for(total, kThreads), kThreads, 0, s,
                           local_backward_filter_kernel)(x, dy, dw, d, beta);
            CONVNET_LAUNCH_CHECK();
        }
    }
    if (db) gemm::column_sums_cuda(dy, g.n, g.f * g.oh * g.ow, db, beta, s);
}

}  // namespace convnet
