// Cross-map response normalisation kernels (the paper's LRN, cuda-convnet's cmrnorm); x, y, dy,
// dx are (N, C, H, W), the window rule is LrnParams::window (csrc/ops/lrn.h).
//
// Tuned path (centred windows, size <= kMaxTunedSize): one thread per (image, pixel, channel
// segment) walks its segment's channels with the last SIZE x values in a register ring (backward:
// also the last SIZE ratios dy*y/d and terms dy*d^-beta), so every x (dy, y) is read from global
// memory once; consecutive threads take consecutive pixels of one map, so each warp's access to a
// channel is one coalesced row. Forward moves 4 bytes in and 4 out per element, backward 12 in
// and 4 out (+4 in when accumulating): the minimum, denominators recomputed as the CPU does.
// Channels are cut into segments so the grid holds ~4 waves of threads even for 27x27 maps (each
// segment rereads SIZE-1 halo channels, mostly from L2), and each thread loads several channels
// ahead so several loads are in flight. Window sums are direct (zeros standing in for clipped
// channels) in the CPU's order with no FMA contraction, so d matches csrc/cpu/lrn.cpp bit for bit.
// Blocked windows: one thread per (image, pixel, block of SIZE maps), which share one denominator.
// Naive path (any window; the fallback for large sizes and the second GPU implementation): one
// thread per element, every window summed from global memory (L1/L2 hits).
#include "csrc/ops/lrn.h"
#include "kernels/common.cuh"
#include "math/norm_math.h"

#include <algorithm>
#include <limits>
#include <type_traits>

namespace convnet {

namespace {
constexpr int kThreads = 256;
constexpr int kMaxTunedSize = 9;
// Channels loaded ahead per step: loads in flight per thread (forward: one per channel;
// backward: three or four per channel).
constexpr int kForwardUnroll = 8;
constexpr int kBackwardUnroll = 4;

__device__ __forceinline__ float denominator(float sum, float alpha, float k) {
    return __fadd_rn(k, __fmul_rn(alpha, sum));
}

struct Geometry {
    int c;          // channels
    int segs;       // channel segments (or blocks) per pixel
    int seg_len;    // channels per segment (or block size)
    int pre, size;  // the window: maps [f - pre, f - pre + size) clipped, or blocks of `size`
    bool blocked;
    float alpha, beta, k;
};

// ---- tuned: centred windows, SIZE a compile-time constant ----------------------------------

// Thread t -> image img, segment seg, pixel p: (img * segs + seg) * hw + p.
template <int SIZE, typename Index>
__global__ void __launch_bounds__(kThreads)
    lrn_forward_kernel(const float* __restrict__ x, float* __restrict__ y, Index n, Index hw,
                       Geometry g) {
    const Index total = n * Index(g.segs) * hw;
    for (Index t = first_index<Index>(); t < total; t += index_stride<Index>()) {
        const Index p = t % hw, r = t / hw;
        const int seg = int(r % g.segs);
        const Index img = r / g.segs;
        const int c0 = seg * g.seg_len, c1 = min(c0 + g.seg_len, g.c);
        const float* xp = x + img * g.c * hw + p;
        float* yp = y + img * g.c * hw + p;

        // ring[j] = x[f - pre + j] for the current output f (0 outside [0, C)); filled for f = c0
        // once the first new channel is shifted in.
        float ring[SIZE];
        ring[0] = 0.f;
#pragma unroll
        for (int j = 1; j < SIZE; ++j) {
            const int ch = c0 - 1 - g.pre + j;
            ring[j] = ch >= 0 && ch < g.c ? xp[ch * hw] : 0.f;
        }
        for (int f = c0; f < c1; f += kForwardUnroll) {
            float lead[kForwardUnroll];
#pragma unroll
            for (int u = 0; u < kForwardUnroll; ++u) {
                const int ch = f + u - g.pre + SIZE - 1;  // >= f + u >= 0 as pre < SIZE
                lead[u] = f + u < c1 && ch < g.c ? xp[ch * hw] : 0.f;
            }
#pragma unroll
            for (int u = 0; u < kForwardUnroll; ++u) {
#pragma unroll
                for (int j = 0; j + 1 < SIZE; ++j) ring[j] = ring[j + 1];
                ring[SIZE - 1] = lead[u];
                if (f + u < c1) {
                    float sum = 0.f, xf = ring[0];
#pragma unroll
                    for (int j = 0; j < SIZE; ++j) {
                        sum = __fadd_rn(sum, __fmul_rn(ring[j], ring[j]));
                        if (j == g.pre) xf = ring[j];  // a select, keeping the ring in registers
                    }
                    const float d = denominator(sum, g.alpha, g.k);
                    yp[(f + u) * hw] = __fmul_rn(xf, pow_neg(d, g.beta));
                }
            }
        }
    }
}

// dx[j] = dy[j] d[j]^-beta + coeff x[j] sum_{i in [j+pre-SIZE+1, j+pre]} dy[i] y[i] / d[i].
// The thread steps a "lead" map L from c0+pre-(SIZE-1) to c1-1+pre: at each step it computes
// d[L] (from x[L-pre .. L-pre+SIZE-1], the ring xr), ratio[L] and term[L] = dy[L] d[L]^-beta,
// and once j = L - pre reaches the segment it writes dx[j]: x[j] is xr[0], the ratios of the
// mirrored window are the ring rr, term[j] sits at rr's index SIZE-1-pre.
template <int SIZE, typename Index>
__global__ void __launch_bounds__(kThreads)
    lrn_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                        const float* __restrict__ dy, float* __restrict__ dx, Index n, Index hw,
                        Geometry g, float coeff, float beta_acc) {
    const Index total = n * Index(g.segs) * hw;
    const int term_at = SIZE - 1 - g.pre;
    for (Index t = first_index<Index>(); t < total; t += index_stride<Index>()) {
        const Index p = t % hw, r = t / hw;
        const int seg = int(r % g.segs);
        const Index img = r / g.segs;
        const int c0 = seg * g.seg_len, c1 = min(c0 + g.seg_len, g.c);
        const Index off = img * g.c * hw + p;
        const float *xp = x + off, *yp = y + off, *dyp = dy + off;
        float* dxp = dx + off;

        float xr[SIZE], rr[SIZE], tr[SIZE];
        xr[0] = 0.f;
#pragma unroll
        for (int j = 0; j < SIZE; ++j) {
            rr[j] = tr[j] = 0.f;
            if (j > 0) {
                const int ch = c0 - SIZE + j;
                xr[j] = ch >= 0 && ch < g.c ? xp[ch * hw] : 0.f;
            }
        }
        const int first = c0 + g.pre - (SIZE - 1), last = c1 - 1 + g.pre;
        for (int lead = first; lead <= last; lead += kBackwardUnroll) {
            // Per step: the lead map's x, its dy and y, and the dx being accumulated into.
            float nx[kBackwardUnroll], ndy[kBackwardUnroll], ny[kBackwardUnroll];
            float ndx[kBackwardUnroll];
#pragma unroll
            for (int u = 0; u < kBackwardUnroll; ++u) {
                const int l = lead + u, lx = l - g.pre + SIZE - 1, j = l - g.pre;
                const bool step = l <= last, in = l >= 0 && l < g.c;
                nx[u] = step && lx >= 0 && lx < g.c ? xp[lx * hw] : 0.f;
                ndy[u] = step && in ? dyp[l * hw] : 0.f;
                ny[u] = step && in ? yp[l * hw] : 0.f;
                ndx[u] = step && j >= c0 && beta_acc != 0.f ? dxp[j * hw] : 0.f;
            }
#pragma unroll
            for (int u = 0; u < kBackwardUnroll; ++u) {
                const int l = lead + u, j = l - g.pre;
                if (l > last) continue;
#pragma unroll
                for (int i = 0; i + 1 < SIZE; ++i) {
                    xr[i] = xr[i + 1];
                    rr[i] = rr[i + 1];
                    tr[i] = tr[i + 1];
                }
                xr[SIZE - 1] = nx[u];
                float ratio = 0.f, term = 0.f;
                if (l >= 0 && l < g.c) {
                    float sum = 0.f;
#pragma unroll
                    for (int i = 0; i < SIZE; ++i) sum = __fadd_rn(sum, __fmul_rn(xr[i], xr[i]));
                    const float d = denominator(sum, g.alpha, g.k);
                    ratio = __fdiv_rn(__fmul_rn(ndy[u], ny[u]), d);
                    term = __fmul_rn(ndy[u], pow_neg(d, g.beta));
                }
                rr[SIZE - 1] = ratio;
                tr[SIZE - 1] = term;
                if (j >= c0) {
                    float acc = 0.f, tj = tr[0];
#pragma unroll
                    for (int i = 0; i < SIZE; ++i) {
                        acc = __fadd_rn(acc, rr[i]);
                        if (i == term_at) tj = tr[i];
                    }
                    const float grad = __fadd_rn(tj, __fmul_rn(__fmul_rn(coeff, xr[0]), acc));
                    dxp[j * hw] = beta_acc == 0.f ? grad
                                                  : __fadd_rn(__fmul_rn(beta_acc, ndx[u]), grad);
                }
            }
        }
    }
}

// ---- blocked windows: one denominator per block of `size` maps ------------------------------

template <typename Index>
__global__ void __launch_bounds__(kThreads)
    lrn_blocked_forward_kernel(const float* __restrict__ x, float* __restrict__ y, Index n,
                               Index hw, Geometry g) {
    const Index total = n * Index(g.segs) * hw;
    for (Index t = first_index<Index>(); t < total; t += index_stride<Index>()) {
        const Index p = t % hw, r = t / hw;
        const int c0 = int(r % g.segs) * g.size, c1 = min(c0 + g.size, g.c);
        const Index off = (r / g.segs) * g.c * hw + p;
        float sum = 0.f;
        for (int ch = c0; ch < c1; ++ch) {
            const float v = x[off + ch * hw];
            sum = __fadd_rn(sum, __fmul_rn(v, v));
        }
        const float s = pow_neg(denominator(sum, g.alpha, g.k), g.beta);
        for (int ch = c0; ch < c1; ++ch) y[off + ch * hw] = __fmul_rn(x[off + ch * hw], s);
    }
}

template <typename Index>
__global__ void __launch_bounds__(kThreads)
    lrn_blocked_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                                const float* __restrict__ dy, float* __restrict__ dx, Index n,
                                Index hw, Geometry g, float coeff, float beta_acc) {
    const Index total = n * Index(g.segs) * hw;
    for (Index t = first_index<Index>(); t < total; t += index_stride<Index>()) {
        const Index p = t % hw, r = t / hw;
        const int c0 = int(r % g.segs) * g.size, c1 = min(c0 + g.size, g.c);
        const Index off = (r / g.segs) * g.c * hw + p;
        float sum = 0.f;
        for (int ch = c0; ch < c1; ++ch) {
            const float v = x[off + ch * hw];
            sum = __fadd_rn(sum, __fmul_rn(v, v));
        }
        const float d = denominator(sum, g.alpha, g.k), s = pow_neg(d, g.beta);
        float acc = 0.f;
        for (int ch = c0; ch < c1; ++ch)
            acc = __fadd_rn(acc, __fdiv_rn(__fmul_rn(dy[off + ch * hw], y[off + ch * hw]), d));
        for (int ch = c0; ch < c1; ++ch) {
            const Index e = off + ch * hw;
            const float grad = __fmul_rn(__fmul_rn(coeff, x[e]), acc);
            store_grad(dx + e, __fadd_rn(__fmul_rn(dy[e], s), grad), beta_acc);
        }
    }
}

// ---- naive: one thread per element, any window -----------------------------------------------

__device__ __forceinline__ void window(int f, const Geometry& g, int* first, int* last) {
    const int lo = g.blocked ? f / g.size * g.size : f - g.pre;
    *first = max(lo, 0);
    *last = min(lo + g.size - 1, g.c - 1);
}

template <typename Index>
__device__ float window_denominator(const float* xp, Index hw, int f, const Geometry& g) {
    int first, last;
    window(f, g, &first, &last);
    float sum = 0.f;
    for (int ch = first; ch <= last; ++ch) {
        const float v = xp[ch * hw];
        sum = __fadd_rn(sum, __fmul_rn(v, v));
    }
    return denominator(sum, g.alpha, g.k);
}

// Element t -> (image, map f, pixel p) of the (N, C, HW) layout.
template <typename Index>
__global__ void __launch_bounds__(kThreads)
    lrn_naive_forward_kernel(const float* __restrict__ x, float* __restrict__ y, Index total,
                             Index hw, Geometry g) {
    for (Index t = first_index<Index>(); t < total; t += index_stride<Index>()) {
        const Index p = t % hw, r = t / hw;
        const int f = int(r % g.c);
        const float* xp = x + (r / g.c) * g.c * hw + p;
        y[t] = __fmul_rn(x[t], pow_neg(window_denominator(xp, hw, f, g), g.beta));
    }
}

template <typename Index>
__global__ void __launch_bounds__(kThreads)
    lrn_naive_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                              const float* __restrict__ dy, float* __restrict__ dx, Index total,
                              Index hw, Geometry g, float coeff, float beta_acc) {
    for (Index t = first_index<Index>(); t < total; t += index_stride<Index>()) {
        const Index p = t % hw, r = t / hw;
        const int j = int(r % g.c);
        const Index off = (r / g.c) * g.c * hw + p;
        // The maps i whose window holds j, in increasing order (the CPU's accumulation order).
        int lo, hi;
        if (g.blocked) {
            lo = j / g.size * g.size;
            hi = min(lo + g.size - 1, g.c - 1);
        } else {
            lo = max(j + g.pre - g.size + 1, 0);
            hi = min(j + g.pre, g.c - 1);
        }
        float acc = 0.f;
        for (int i = lo; i <= hi; ++i) {
            const float d = window_denominator(x + off, hw, i, g);
            acc = __fadd_rn(acc, __fdiv_rn(__fmul_rn(dy[off + i * hw], y[off + i * hw]), d));
        }
        const float s = pow_neg(window_denominator(x + off, hw, j, g), g.beta);
        store_grad(dx + t, __fadd_rn(__fmul_rn(dy[t], s), __fmul_rn(__fmul_rn(coeff, x[t]), acc)),
                   beta_acc);
    }
}

// ---- launch plumbing -------------------------------------------------------------------------

int multiprocessor_count() {
    int device = 0, sms = 0;
    CONVNET_CUDA_CHECK(cudaGetDevice(&device));
    CONVNET_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    return sms;
}

Geometry geometry(std::int64_t n, std::int64_t c, std::int64_t hw, const LrnParams& p,
                  bool tuned) {
    CONVNET_ARG_CHECK(c <= std::numeric_limits<int>::max(), "lrn: too many channels (", c, ")");
    Geometry g{int(c), 1, int(c), p.pre, p.size, p.blocked, float(p.alpha), float(p.beta),
               float(p.k)};
    if (p.blocked) {
        g.seg_len = p.size;
        g.segs = int((c + p.size - 1) / p.size);
    } else if (tuned) {
        // Enough segments for ~4 waves of resident threads, each at least 16 maps long (or all
        // of them) so the SIZE-1 halo stays a small fraction.
        const std::int64_t target = std::int64_t(multiprocessor_count()) * 2048 * 4;
        const std::int64_t pixels = std::max<std::int64_t>(n * hw, 1);
        const std::int64_t most = std::max<std::int64_t>(c / 16, 1);
        const std::int64_t segs = std::min((target + pixels - 1) / pixels, most);
        g.seg_len = int((c + segs - 1) / segs);
        g.segs = int((c + g.seg_len - 1) / g.seg_len);
    }
    return g;
}

bool use_tuned(const LrnParams& p, bool naive) {
    return !naive && !p.blocked && p.size <= kMaxTunedSize;
}

// Calls f(std::integral_constant<int, SIZE>{}) for size in [1, kMaxTunedSize].
template <typename F>
void with_size(int size, F&& f) {
    switch (size) {
        case 1: f(std::integral_constant<int, 1>{}); break;
        case 2: f(std::integral_constant<int, 2>{}); break;
        case 3: f(std::integral_constant<int, 3>{}); break;
        case 4: f(std::integral_constant<int, 4>{}); break;
        case 5: f(std::integral_constant<int, 5>{}); break;
        case 6: f(std::integral_constant<int, 6>{}); break;
        case 7: f(std::integral_constant<int, 7>{}); break;
        case 8: f(std::integral_constant<int, 8>{}); break;
        case 9: f(std::integral_constant<int, 9>{}); break;
        default: CONVNET_CHECK(false, "lrn: no tuned kernel for size ", size);
    }
}

}  // namespace

void lrn_forward_cuda(const float* x, float* y, std::int64_t n, std::int64_t c, std::int64_t hw,
                      const LrnParams& p, void* stream, bool naive) {
    const std::int64_t numel = n * c * hw;
    if (numel == 0) return;
    const bool tuned = use_tuned(p, naive);
    const Geometry g = geometry(n, c, hw, p, tuned);
    const cudaStream_t s = cuda::as_stream(stream);
    with_index(numel, [&](auto index) {
        using Index = decltype(index);
        if (tuned) {
            with_size(p.size, [&](auto size) {
                const std::int64_t threads = n * g.segs * hw;
                CONVNET_LAUNCH(cuda::grid_for(threads, kThreads), kThreads, 0, s,
                               lrn_forward_kernel<decltype(size)::value, Index>)(x, y, Index(n),
                                                                                 Index(hw), g);
            });
        } else if (p.blocked && !naive) {
            CONVNET_LAUNCH(cuda::grid_for(n * g.segs * hw, kThreads), kThreads, 0, s,
                           lrn_blocked_forward_kernel<Index>)(x, y, Index(n), Index(hw), g);
        } else {
            CONVNET_LAUNCH(cuda::grid_for(numel, kThreads), kThreads, 0, s,
                           lrn_naive_forward_kernel<Index>)(x, y, Index(numel), Index(hw), g);
        }
    });
    CONVNET_LAUNCH_CHECK();
}

void lrn_backward_cuda(const float* x, const float* y, const float* dy, float* dx, std::int64_t n,
                       std::int64_t c, std::int64_t hw, const LrnParams& p, float beta,
                       void* stream, bool naive) {
    const std::int64_t numel = n * c * hw;
    if (numel == 0) return;
    const bool tuned = use_tuned(p, naive);
    const Geometry g = geometry(n, c, hw, p, tuned);
    // The CPU's float coefficient, rounded the same way: (-2 * alpha) * beta.
    const float coeff = -2.f * float(p.alpha) * float(p.beta);
    const cudaStream_t s = cuda::as_stream(stream);
    with_index(numel, [&](auto index) {
        using Index = decltype(index);
        if (tuned) {
            with_size(p.size, [&](auto size) {
                const std::int64_t threads = n * g.segs * hw;
                CONVNET_LAUNCH(cuda::grid_for(threads, kThreads), kThreads, 0, s,
                               lrn_backward_kernel<decltype(size)::value, Index>)(
                    x, y, dy, dx, Index(n), Index(hw), g, coeff, beta);
            });
        } else if (p.blocked && !naive) {
            CONVNET_LAUNCH(cuda::grid_for(n * g.segs * hw, kThreads), kThreads, 0, s,
                           lrn_blocked_backward_kernel<Index>)(x, y, dy, dx, Index(n), Index(hw), g,
                                                               coeff, beta);
        } else {
            CONVNET_LAUNCH(cuda::grid_for(numel, kThreads), kThreads, 0, s,
                           lrn_naive_backward_kernel<Index>)(x, y, dy, dx, Index(numel), Index(hw),
                                                             g, coeff, beta);
        }
    });
    CONVNET_LAUNCH_CHECK();
}

}  // namespace convnet
