// Within-map normalisation kernels: rnorm and cnorm (csrc/ops/rnorm.h); x, y, dy, dx are
// (N, C, H, W), every (image, channel) an independent H x W plane, windows SIZE x SIZE from -pre.
//
// One block of 256 threads per (output tile, plane): it loads the tile plus the halo its chain of
// box sums needs into shared memory once (zeros outside the image, which makes every clipped
// window a plain one), then runs the chain there: separable box sums (a row pass into one buffer,
// a column pass whose consumer computes the next stage), each stage on the region the next one
// needs. Stages and halos (H = SIZE-1 on each side in total per box sum):
//   rnorm forward   x (tile+H) -> d -> y                                      1 box sum
//   rnorm backward  x (tile+2H) -> d, ratio (tile+H) -> acc -> dx             2
//   cnorm forward   x (tile+2H) -> mean, e (tile+H) -> d -> y                 2
//   cnorm backward  x (tile+4H) -> e (tile+3H) -> d, a (tile+2H) -> g (tile+H) -> dx   4
// DRAM traffic is the minimum (x, and dy, y for backward, read once; one output written) plus the
// halos, which neighbouring tiles share through L2. Every sum runs in csrc/cpu/box_sum.h's order
// (rows, then columns, ascending; the zeros add exactly) with no FMA contraction, and each
// formula follows rnorm.cpp / cnorm.cpp operation by operation, so results match the CPU's.
// Tiles are 16 x 32 (smaller for narrow images or when a large window's halos would not fit in
// shared memory); a window too large for even a 1 x 1 tile is refused.
#include "csrc/ops/rnorm.h"
#include "kernels/common.cuh"
#include "math/norm_math.h"

#include <algorithm>
#include <cstddef>
#include <limits>

namespace convnet {

namespace {
constexpr int kThreads = 256;

struct Norm {
    int size, pre;
    float alpha, beta, k;
    float coeff;  // rnorm: -2 alpha beta; cnorm: -alpha beta (as the CPU rounds them)
};

// This block's output tile [i0, i0 + th) x [j0, j0 + tw) of an h x w plane.
struct Tile {
    int i0, j0, th, tw, h, w;
    __device__ bool inside(int i, int j) const { return i >= 0 && i < h && j >= 0 && j < w; }
};

__device__ __forceinline__ Tile block_tile(int h, int w, int tiles_x, int th, int tw) {
    return Tile{int(blockIdx.x) / tiles_x * th, int(blockIdx.x) % tiles_x * tw, th, tw, h, w};
}

__device__ __forceinline__ float denominator(float sum, const Norm& nm) {
    return __fadd_rn(nm.k, __fmul_rn(nm.alpha, sum));
}

// In-image pixels of the clipped window of pixel i along an axis of `size` (cnorm's divisor).
__device__ __forceinline__ int window_count(int i, int size, const Norm& nm) {
    return min(i - nm.pre + nm.size, size) - max(i - nm.pre, 0);
}

// buf (rows x cols, its (0, 0) at pixel (i0 - off, j0 - off)) <- the plane, 0 outside the image.
__device__ void load_region(float* buf, const float* plane, const Tile& t, int off, int rows,
                            int cols) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols, c = e - r * cols, i = t.i0 - off + r, j = t.j0 - off + c;
        buf[e] = t.inside(i, j) ? plane[i * t.w + j] : 0.f;
    }
}

// dst[r][c] = sum_{v < S} f(src[r][c + v]), f the square or the identity; src is
// rows x (cols + S - 1), dst rows x cols.
template <bool kSquare>
__device__ void row_sums(const float* src, float* dst, int rows, int cols, int size) {
    const int src_cols = cols + size - 1;
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols, c = e - r * cols;
        const float* s = src + r * src_cols + c;
        float acc = 0.f;
        for (int v = 0; v < size; ++v) acc = __fadd_rn(acc, kSquare ? __fmul_rn(s[v], s[v]) : s[v]);
        dst[e] = acc;
    }
}

// f(r, c, e = r * cols + c, sum_{u < S} src[r + u][c]) for every r < rows, c < cols; src is
// (rows + S - 1) x cols.
template <typename F>
__device__ void col_sums(const float* src, int rows, int cols, int size, F&& f) {
    for (int e = threadIdx.x; e < rows * cols; e += blockDim.x) {
        const int r = e / cols, c = e - r * cols;
        const float* s = src + c;
        float acc = 0.f;
        for (int u = r; u < r + size; ++u) acc = __fadd_rn(acc, s[u * cols]);
        f(r, c, e, acc);
    }
}

// ---- rnorm ----------------------------------------------------------------------------------

__global__ void __launch_bounds__(kThreads)
    rnorm_forward_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t planes,
                         int h, int w, int tiles_x, int th, int tw, Norm nm) {
    CONVNET_DYNAMIC_SHARED(float, smem);
    const int H = nm.size - 1, xr = th + H, xc = tw + H;
    float* xs = smem;          // x on the tile + H, from (i0 - pre, j0 - pre): xr x xc
    float* rs = xs + xr * xc;  // its rows' sums of squares: xr x tw
    const Tile t = block_tile(h, w, tiles_x, th, tw);
    for (std::int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const float* xp = x + plane * h * w;
        float* yp = y + plane * h * w;
        load_region(xs, xp, t, nm.pre, xr, xc);
        __syncthreads();
        row_sums<true>(xs, rs, xr, tw, nm.size);
        __syncthreads();
        col_sums(rs, th, tw, nm.size, [&](int r, int c, int, float sum) {
            const int i = t.i0 + r, j = t.j0 + c;
            if (i < h && j < w)
                yp[i * w + j] = __fmul_rn(xs[(r + nm.pre) * xc + c + nm.pre],
                                          pow_neg(denominator(sum, nm), nm.beta));
        });
        __syncthreads();
    }
}

// dx = dy d^-beta + coeff x box'(dy y / d), box' the mirrored window (offset q = SIZE-1-pre).
__global__ void __launch_bounds__(kThreads)
    rnorm_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                          const float* __restrict__ dy, float* __restrict__ dx,
                          std::int64_t planes, int h, int w, int tiles_x, int th, int tw, Norm nm,
                          float beta_acc) {
    CONVNET_DYNAMIC_SHARED(float, smem);
    const int H = nm.size - 1, q = H - nm.pre;
    const int xr = th + 2 * H, xc = tw + 2 * H;  // x from (i0 - H, j0 - H)
    const int rr = th + H, rc = tw + H;          // ratios from (i0 - q, j0 - q)
    float* xs = smem;
    float* rs = xs + xr * xc;     // row sums: xr x rc, later rr x tw
    float* ratio = rs + xr * rc;  // rr x rc
    float* dt = ratio + rr * rc;  // d on the tile: th x tw
    const Tile t = block_tile(h, w, tiles_x, th, tw);
    for (std::int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const std::int64_t off = plane * h * w;
        load_region(xs, x + off, t, H, xr, xc);
        __syncthreads();
        row_sums<true>(xs, rs, xr, rc, nm.size);
        __syncthreads();
        col_sums(rs, rr, rc, nm.size, [&](int r, int c, int e, float sum) {
            const int i = t.i0 - q + r, j = t.j0 - q + c;
            float v = 0.f;
            if (t.inside(i, j)) {
                const float d = denominator(sum, nm);
                const int p = i * w + j;
                v = __fdiv_rn(__fmul_rn(dy[off + p], y[off + p]), d);
                if (r >= q && r < q + th && c >= q && c < q + tw) dt[(r - q) * tw + c - q] = d;
            }
            ratio[e] = v;
        });
        __syncthreads();
        row_sums<false>(ratio, rs, rr, tw, nm.size);
        __syncthreads();
        col_sums(rs, th, tw, nm.size, [&](int r, int c, int e, float acc) {
            const int i = t.i0 + r, j = t.j0 + c;
            if (i >= h || j >= w) return;
            const std::int64_t p = off + i * w + j;
            const float xv = xs[(r + H) * xc + c + H];
            const float grad = __fadd_rn(__fmul_rn(dy[p], pow_neg(dt[e], nm.beta)),
                                         __fmul_rn(__fmul_rn(nm.coeff, xv), acc));
            store_grad(dx + p, grad, beta_acc);
        });
        __syncthreads();
    }
}

// ---- cnorm ----------------------------------------------------------------------------------

// m = box(x) / count, e = x - m, d = k + alpha box(e^2), y = x d^-beta.
__global__ void __launch_bounds__(kThreads)
    cnorm_forward_kernel(const float* __restrict__ x, float* __restrict__ y, std::int64_t planes,
                         int h, int w, int tiles_x, int th, int tw, Norm nm) {
    CONVNET_DYNAMIC_SHARED(float, smem);
    const int H = nm.size - 1, pre = nm.pre;
    const int xr = th + 2 * H, xc = tw + 2 * H;  // x from (i0 - 2 pre, j0 - 2 pre)
    const int er = th + H, ec = tw + H;          // e from (i0 - pre, j0 - pre)
    float* xs = smem;
    float* rs = xs + xr * xc;  // row sums: xr x ec, later er x tw
    float* es = rs + xr * ec;  // er x ec
    const Tile t = block_tile(h, w, tiles_x, th, tw);
    for (std::int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const float* xp = x + plane * h * w;
        float* yp = y + plane * h * w;
        load_region(xs, xp, t, 2 * pre, xr, xc);
        __syncthreads();
        row_sums<false>(xs, rs, xr, ec, nm.size);
        __syncthreads();
        col_sums(rs, er, ec, nm.size, [&](int r, int c, int e, float sum) {
            const int i = t.i0 - pre + r, j = t.j0 - pre + c;
            float v = 0.f;
            if (t.inside(i, j)) {
                const float count = float(window_count(i, h, nm) * window_count(j, w, nm));
                v = __fsub_rn(xs[(r + pre) * xc + c + pre], __fdiv_rn(sum, count));
            }
            es[e] = v;
        });
        __syncthreads();
        row_sums<true>(es, rs, er, tw, nm.size);
        __syncthreads();
        col_sums(rs, th, tw, nm.size, [&](int r, int c, int, float sum) {
            const int i = t.i0 + r, j = t.j0 + c;
            if (i < h && j < w)
                yp[i * w + j] = __fmul_rn(xs[(r + 2 * pre) * xc + c + 2 * pre],
                                          pow_neg(denominator(sum, nm), nm.beta));
        });
        __syncthreads();
    }
}

// Exact backward (cnorm.cpp): a = -alpha beta dy y / d, b = box'(a), g = 2 e b,
// dx = dy d^-beta + g - box'(g / count), box' the mirrored window (offset q = SIZE-1-pre).
// Regions (offset from the tile's corner, extent beyond the tile): x (2H, 4H), e (H+q, 3H),
// a and d (2q, 2H), g (q, H), the tile (0, 0).
__global__ void __launch_bounds__(kThreads)
    cnorm_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                          const float* __restrict__ dy, float* __restrict__ dx,
                          std::int64_t planes, int h, int w, int tiles_x, int th, int tw, Norm nm,
                          float beta_acc) {
    CONVNET_DYNAMIC_SHARED(float, smem);
    const int S = nm.size, H = S - 1, pre = nm.pre, q = H - pre;
    const int xr = th + 4 * H, xc = tw + 4 * H;
    const int er = th + 3 * H, ec = tw + 3 * H;
    const int ar = th + 2 * H, ac = tw + 2 * H;
    const int gr = th + H, gc = tw + H;
    float* big = smem;           // x (xr x xc), then the row sums of e^2, of a, of g / count
    float* mid = big + xr * xc;  // the row sums of x (xr x ec), then a (ar x ac), g / count
    float* es = mid + xr * ec;   // e: er x ec
    float* dt = es + er * ec;    // d on the tile: th x tw
    float* gt = dt + th * tw;    // g on the tile: th x tw
    const Tile t = block_tile(h, w, tiles_x, th, tw);
    for (std::int64_t plane = blockIdx.y; plane < planes; plane += gridDim.y) {
        const std::int64_t off = plane * h * w;
        load_region(big, x + off, t, 2 * H, xr, xc);
        __syncthreads();
        row_sums<false>(big, mid, xr, ec, S);
        __syncthreads();
        col_sums(mid, er, ec, S, [&](int r, int c, int e, float sum) {
            const int i = t.i0 - H - q + r, j = t.j0 - H - q + c;
            float v = 0.f;
            if (t.inside(i, j)) {
                const float count = float(window_count(i, h, nm) * window_count(j, w, nm));
                v = __fsub_rn(big[(r + pre) * xc + c + pre], __fdiv_rn(sum, count));
            }
            es[e] = v;
        });
        __syncthreads();
        row_sums<true>(es, big, er, ac, S);
        __syncthreads();
        col_sums(big, ar, ac, S, [&](int r, int c, int e, float sum) {
            const int i = t.i0 - 2 * q + r, j = t.j0 - 2 * q + c;
            float a = 0.f;
            if (t.inside(i, j)) {
                const float d = denominator(sum, nm);
                const std::int64_t p = off + i * w + j;
                a = __fdiv_rn(__fmul_rn(__fmul_rn(nm.coeff, dy[p]), y[p]), d);
                const int tr = r - 2 * q, tc = c - 2 * q;
                if (tr >= 0 && tr < th && tc >= 0 && tc < tw) dt[tr * tw + tc] = d;
            }
            mid[e] = a;
        });
        __syncthreads();
        row_sums<false>(mid, big, ar, gc, S);
        __syncthreads();
        col_sums(big, gr, gc, S, [&](int r, int c, int e, float b) {
            const int i = t.i0 - q + r, j = t.j0 - q + c;
            float v = 0.f;
            if (t.inside(i, j)) {
                const float g = __fmul_rn(__fmul_rn(2.f, es[(r + H) * ec + c + H]), b);
                const float count = float(window_count(i, h, nm) * window_count(j, w, nm));
                v = __fdiv_rn(g, count);
                const int tr = r - q, tc = c - q;
                if (tr >= 0 && tr < th && tc >= 0 && tc < tw) gt[tr * tw + tc] = g;
            }
            mid[e] = v;
        });
        __syncthreads();
        row_sums<false>(mid, big, gr, tw, S);
        __syncthreads();
        col_sums(big, th, tw, S, [&](int r, int c, int e, float sum) {
            const int i = t.i0 + r, j = t.j0 + c;
            if (i >= h || j >= w) return;
            const std::int64_t p = off + i * w + j;
            const float v = __fsub_rn(
                __fadd_rn(__fmul_rn(dy[p], pow_neg(dt[e], nm.beta)), gt[e]), sum);
            store_grad(dx + p, v, beta_acc);
        });
        __syncthreads();
    }
}

// ---- launch plumbing -------------------------------------------------------------------------

enum class Kind { rnorm_forward, rnorm_backward, cnorm_forward, cnorm_backward };

// Shared-memory floats each kernel carves up (see the kernels' buffer comments).
std::int64_t smem_floats(Kind kind, std::int64_t th, std::int64_t tw, std::int64_t H) {
    switch (kind) {
        case Kind::rnorm_forward: return (th + H) * (tw + H) + (th + H) * tw;
        case Kind::rnorm_backward:
            return (th + 2 * H) * (tw + 2 * H) + (th + 2 * H) * (tw + H) + (th + H) * (tw + H) +
                   th * tw;
        case Kind::cnorm_forward:
            return (th + 2 * H) * (tw + 2 * H) + (th + 2 * H) * (tw + H) + (th + H) * (tw + H);
        case Kind::cnorm_backward:
            return (th + 4 * H) * (tw + 4 * H) + (th + 4 * H) * (tw + 3 * H) +
                   (th + 3 * H) * (tw + 3 * H) + 2 * th * tw;
    }
    return 0;
}

struct Launch {
    int th, tw, tiles_x;
    dim3 grid;
    std::size_t smem;
};

// Picks the tile (16 x 32, or the image if smaller, halved until the buffers fit) and opts the
// kernel into more than 48 KB of shared memory when it needs it.
Launch plan(const void* kernel, Kind kind, const char* op, std::int64_t planes, std::int64_t h,
            std::int64_t w, const RnormParams& p) {
    CONVNET_ARG_CHECK(h * w <= std::numeric_limits<int>::max() / 2, op, ": a ", h, "x", w,
                      " map is too large for the GPU kernel");
    int device = 0, optin = 0;
    CONVNET_CUDA_CHECK(cudaGetDevice(&device));
    CONVNET_CUDA_CHECK(
        cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
    const std::int64_t limit = std::max<std::int64_t>(optin, 48 * 1024);
    std::int64_t tw = std::min<std::int64_t>(32, w);
    std::int64_t th = std::min<std::int64_t>(h, std::max<std::int64_t>(1, 512 / tw));
    const std::int64_t H = p.size - 1;
    while (smem_floats(kind, th, tw, H) * 4 > limit && (th > 1 || tw > 1)) {
        if (th >= tw)
            th = (th + 1) / 2;
        else
            tw = (tw + 1) / 2;
    }
    const std::int64_t bytes = smem_floats(kind, th, tw, H) * 4;
    CONVNET_ARG_CHECK(bytes <= limit, op, ": a window of ", p.size,
                      " needs more shared memory than the GPU has (", bytes, " > ", limit,
                      " bytes); run it on the CPU");
    if (bytes > 48 * 1024)
        CONVNET_CUDA_CHECK(cudaFuncSetAttribute(
            kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes)));
    const std::int64_t tiles_x = (w + tw - 1) / tw, tiles = tiles_x * ((h + th - 1) / th);
    const dim3 grid(unsigned(tiles), unsigned(std::min<std::int64_t>(planes, 65535)));
    return Launch{int(th), int(tw), int(tiles_x), grid, std::size_t(bytes)};
}

Norm norm(const RnormParams& p, float coeff) {
    return Norm{p.size, p.pre, float(p.alpha), float(p.beta), float(p.k), coeff};
}

// The CPU's float coefficients, rounded the same way.
float rnorm_coeff(const RnormParams& p) { return -2.f * float(p.alpha) * float(p.beta); }
float cnorm_coeff(const RnormParams& p) { return -float(p.alpha) * float(p.beta); }

template <typename Kernel>
void launch_forward(Kernel kernel, Kind kind, const char* op, const float* x, float* y,
                    std::int64_t planes, std::int64_t h, std::int64_t w, const RnormParams& p,
                    float coeff, void* stream) {
    if (planes * h * w == 0) return;
    const Launch l = plan(reinterpret_cast<const void*>(kernel), kind, op, planes, h, w, p);
    CONVNET_LAUNCH(l.grid, kThreads, l.smem, cuda::as_stream(stream), kernel)(
        x, y, planes, int(h), int(w), l.tiles_x, l.th, l.tw, norm(p, coeff));
    CONVNET_LAUNCH_CHECK();
}

template <typename Kernel>
void launch_backward(Kernel kernel, Kind kind, const char* op, const float* x, const float* y,
                     const float* dy, float* dx, std::int64_t planes, std::int64_t h,
                     std::int64_t w, const RnormParams& p, float coeff, float beta,
                     void* stream) {
    if (planes * h * w == 0) return;
    const Launch l = plan(reinterpret_cast<const void*>(kernel), kind, op, planes, h, w, p);
    CONVNET_LAUNCH(l.grid, kThreads, l.smem, cuda::as_stream(stream), kernel)(
        x, y, dy, dx, planes, int(h), int(w), l.tiles_x, l.th, l.tw, norm(p, coeff), beta);
    CONVNET_LAUNCH_CHECK();
}
}  // namespace

void rnorm_forward_cuda(const float* x, float* y, std::int64_t planes, std::int64_t h,
                        std::int64_t w, const RnormParams& p, void* stream) {
    launch_forward(rnorm_forward_kernel, Kind::rnorm_forward, "rnorm_forward", x, y, planes, h,
                   w, p, rnorm_coeff(p), stream);
}

void rnorm_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                         std::int64_t planes, std::int64_t h, std::int64_t w,
                         const RnormParams& p, float beta, void* stream) {
    launch_backward(rnorm_backward_kernel, Kind::rnorm_backward, "rnorm_backward", x, y, dy, dx,
                    planes, h, w, p, rnorm_coeff(p), beta, stream);
}

void cnorm_forward_cuda(const float* x, float* y, std::int64_t planes, std::int64_t h,
                        std::int64_t w, const RnormParams& p, void* stream) {
    launch_forward(cnorm_forward_kernel, Kind::cnorm_forward, "cnorm_forward", x, y, planes, h,
                   w, p, cnorm_coeff(p), stream);
}

void cnorm_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                         std::int64_t planes, std::int64_t h, std::int64_t w,
                         const RnormParams& p, float beta, void* stream) {
    launch_backward(cnorm_backward_kernel, Kind::cnorm_backward, "cnorm_backward", x, y, dy, dx,
                    planes, h, w, p, cnorm_coeff(p), beta, stream);
}

}  // namespace convnet
