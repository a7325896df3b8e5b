// Max and average pooling kernels with cuda-convnet's geometry (csrc/ops/pool.h); x, dx are
// (N, C, H, W), y, dy are (N, C, OH, OW) and each (image, channel) is an independent plane.
//
// Forward: one thread per output element, consecutive threads on consecutive output columns, so
// the writes are coalesced and a warp's window reads cover a few contiguous row segments (the
// overlap between neighbouring windows, 2.25x for 3/2 pooling, is served by L1). The common square
// 2x2 and 3x3 windows are unrolled so all their loads are in flight at once. DRAM traffic: x read
// once, y written once.
// Backward: one thread per INPUT element gathers from the outputs whose windows hold it, in the
// CPU's order (output rows, then columns, ascending), so no atomics and no separate zeroing pass:
// x and dx move once, y and dy (a quarter of the size for stride 2) come mostly from L1/L2. Max
// sends dy to every in-image input equal to the window's maximum y (ties all receive it, as the
// CPU does); avg sends dy / (in-image pixels of the window). Every sum and comparison follows
// csrc/cpu/pool.cpp's order without FMA contraction, so results match the CPU bit for bit.
#include "csrc/ops/pool.h"
#include "kernels/common.cuh"

#include <math_constants.h>

#include <algorithm>
#include <limits>
#include <type_traits>

namespace convnet {

namespace {
constexpr int kThreads = 256;

// n / d for 0 <= n < 2^31 by a multiply-high and a shift (Granlund & Montgomery; CUTLASS's
// FastDivmod): a run-time integer division costs ~20 instructions, and these kernels need four
// to six per element, which would otherwise cost more issue slots than their loads.
struct FastDiv {
    int d = 1;
    unsigned mul = 0, shift = 0;
    FastDiv() = default;
    explicit FastDiv(int divisor) : d(divisor) {
        if (d == 1) return;
        unsigned l = 0;  // ceil(log2 d)
        while ((1LL << l) < d) ++l;
        mul = unsigned(((1ULL << (31 + l)) + unsigned(d) - 1) / unsigned(d));
        shift = l - 1;
    }
};

// n / f.d for n >= 0: the multiply-high with 32-bit indices, a plain division with 64-bit ones.
template <typename Index>
__device__ __forceinline__ Index quotient(Index n, const FastDiv& f) {
    if constexpr (sizeof(Index) == 4)
        return f.d == 1 ? n : Index(__umulhi(unsigned(n), f.mul) >> f.shift);
    else
        return n / f.d;
}

struct Axis {
    int size;          // input length
    int outs;          // output length
    int window, stride, start;
    FastDiv len_div;   // by size (backward: flat index -> row, column) or outs (forward)
    FastDiv stride_div;
    int bias;          // a multiple of stride, >= start + window: keeps numerators >= 0
    int bias_outs;     // bias / stride
};

struct Geometry {
    Axis y, x;
};

// The outputs [o0, o1] whose windows start + o*stride + [0, window) hold input i, clipped.
template <typename Index>
__device__ __forceinline__ void covering(int i, const Axis& a, int* o0, int* o1) {
    *o1 = min(int(quotient<Index>(Index(i - a.start + a.bias), a.stride_div)) - a.bias_outs,
              a.outs - 1);
    *o0 = max(int(quotient<Index>(Index(i - a.start - a.window + a.stride + a.bias),
                                  a.stride_div)) - a.bias_outs,
              0);
}

// Output t -> plane, row oy, column ox; the window rows [y0, y1) x cols [x0, x1) clipped.
// KS > 0: a KS x KS window, unrolled with in-image predicates; KS == 0: any window.
template <PoolMode kMode, int KS, typename Index>
__global__ void __launch_bounds__(kThreads)
    pool_forward_kernel(const float* __restrict__ x, float* __restrict__ y, Index total,
                        Geometry g) {
    for (Index t = first_index<Index>(); t < total; t += index_stride<Index>()) {
        const Index r = quotient<Index>(t, g.x.len_div), plane = quotient<Index>(r, g.y.len_div);
        const int ox = int(t - r * g.x.outs), oy = int(r - plane * g.y.outs);
        const int w = g.x.size;
        const float* xp = x + plane * g.y.size * w;
        const int fy = g.y.start + oy * g.y.stride, fx = g.x.start + ox * g.x.stride;
        const int y0 = max(fy, 0), y1 = min(fy + g.y.window, g.y.size);
        const int x0 = max(fx, 0), x1 = min(fx + g.x.window, w);
        float out = kMode == PoolMode::max ? -CUDART_INF_F : 0.f;
        // std::max(out, v) is (out < v ? v : out); avg sums the in-image pixels in row order.
        auto take = [&](float v) {
            if (kMode == PoolMode::max)
                out = out < v ? v : out;
            else
                out = __fadd_rn(out, v);
        };
        if constexpr (KS > 0) {
            float v[KS][KS];
#pragma unroll
            for (int a = 0; a < KS; ++a)
#pragma unroll
                for (int b = 0; b < KS; ++b) {
                    const int iy = fy + a, ix = fx + b;
                    v[a][b] = iy >= y0 && iy < y1 && ix >= x0 && ix < x1 ? xp[iy * w + ix] : 0.f;
                }
#pragma unroll
            for (int a = 0; a < KS; ++a)
#pragma unroll
                for (int b = 0; b < KS; ++b) {
                    const int iy = fy + a, ix = fx + b;
                    if (iy >= y0 && iy < y1 && ix >= x0 && ix < x1) take(v[a][b]);
                }
        } else {
            for (int iy = y0; iy < y1; ++iy)
                for (int ix = x0; ix < x1; ++ix) take(xp[iy * w + ix]);
        }
        if (kMode == PoolMode::avg) out = __fdiv_rn(out, float((y1 - y0) * (x1 - x0)));
        y[t] = out;
    }
}

// Input t -> plane, row iy, column ix; the outputs whose windows hold (iy, ix) are rows
// [oy0, oy1] x cols [ox0, ox1] (start + o*stride <= i < start + o*stride + size).
template <PoolMode kMode, typename Index>
__global__ void __launch_bounds__(kThreads)
    pool_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                         const float* __restrict__ dy, float* __restrict__ dx, Index total,
                         Geometry g, float beta) {
    for (Index t = first_index<Index>(); t < total; t += index_stride<Index>()) {
        const Index r = quotient<Index>(t, g.x.len_div), plane = quotient<Index>(r, g.y.len_div);
        const int ix = int(t - r * g.x.size), iy = int(r - plane * g.y.size);
        const Index out_plane = plane * g.y.outs * g.x.outs;
        int oy0, oy1, ox0, ox1;
        covering<Index>(iy, g.y, &oy0, &oy1);
        covering<Index>(ix, g.x, &ox0, &ox1);
        // The CPU scales dx first (zero, unchanged or times beta), then adds in output order.
        float acc = beta == 0.f ? 0.f : beta == 1.f ? dx[t] : __fmul_rn(dx[t], beta);
        const float v = kMode == PoolMode::max ? x[t] : 0.f;
        for (int oy = oy0; oy <= oy1; ++oy) {
            int rows = 0;
            if (kMode == PoolMode::avg) {
                const int fy = g.y.start + oy * g.y.stride;
                rows = min(fy + g.y.window, g.y.size) - max(fy, 0);
            }
            for (int ox = ox0; ox <= ox1; ++ox) {
                const Index o = out_plane + Index(oy) * g.x.outs + ox;
                if (kMode == PoolMode::max) {
                    if (v == y[o]) acc = __fadd_rn(acc, dy[o]);
                } else {
                    const int fx = g.x.start + ox * g.x.stride;
                    const int cols = min(fx + g.x.window, g.x.size) - max(fx, 0);
                    acc = __fadd_rn(acc, __fdiv_rn(dy[o], float(rows * cols)));
                }
            }
        }
        dx[t] = acc;
    }
}

Axis axis(std::int64_t size, std::int64_t outs, int window, int stride, int start,
          bool backward) {
    const int bias_outs = (std::max(start, 0) + window + stride - 1) / stride;
    return Axis{int(size),
                int(outs),
                window,
                stride,
                start,
                FastDiv(int(backward ? size : outs)),
                FastDiv(stride),
                bias_outs * stride,
                bias_outs};
}

Geometry geometry(std::int64_t h, std::int64_t w, std::int64_t oh, std::int64_t ow,
                  const PoolParams& p, bool backward) {
    constexpr std::int64_t kMax = std::numeric_limits<int>::max() / 4;
    CONVNET_ARG_CHECK(h * w < kMax && oh * ow < kMax && p.start_h > -kMax && p.start_w > -kMax &&
                          p.start_h < kMax && p.start_w < kMax,
                      "pool: a plane of ", h, "x", w, " -> ", oh, "x", ow,
                      " is too large for the GPU kernels");
    return Geometry{axis(h, oh, p.size_h, p.stride_h, p.start_h, backward),
                    axis(w, ow, p.size_w, p.stride_w, p.start_w, backward)};
}
}  // namespace

void pool_forward_cuda(const float* x, float* y, std::int64_t planes, std::int64_t h,
                       std::int64_t w, std::int64_t oh, std::int64_t ow, const PoolParams& p,
                       void* stream) {
    const std::int64_t total = planes * oh * ow;
    if (total == 0) return;
    const Geometry g = geometry(h, w, oh, ow, p, false);
    const cudaStream_t s = cuda::as_stream(stream);
    const unsigned blocks = cuda::grid_for(total, kThreads);
    const int square = p.size_h == p.size_w ? p.size_h : 0;
    with_index(std::max(planes * h * w, total), [&](auto index) {
        using Index = decltype(index);
        auto launch = [&](auto mode) {
            constexpr PoolMode kMode = decltype(mode)::value;
            const Index n = Index(total);
            if (square == 3)
                CONVNET_LAUNCH(blocks, kThreads, 0, s, pool_forward_kernel<kMode, 3, Index>)(x, y,
                                                                                             n, g);
            else if (square == 2)
                CONVNET_LAUNCH(blocks, kThreads, 0, s, pool_forward_kernel<kMode, 2, Index>)(x, y,
                                                                                             n, g);
            else
                CONVNET_LAUNCH(blocks, kThreads, 0, s, pool_forward_kernel<kMode, 0, Index>)(x, y,
                                                                                             n, g);
        };
        if (p.mode == PoolMode::max)
            launch(std::integral_constant<PoolMode, PoolMode::max>{});
        else
            launch(std::integral_constant<PoolMode, PoolMode::avg>{});
    });
    CONVNET_LAUNCH_CHECK();
}

void pool_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                        std::int64_t planes, std::int64_t h, std::int64_t w, std::int64_t oh,
                        std::int64_t ow, const PoolParams& p, float beta, void* stream) {
    const std::int64_t total = planes * h * w;
    if (total == 0) return;
    const Geometry g = geometry(h, w, oh, ow, p, true);
    const cudaStream_t s = cuda::as_stream(stream);
    const unsigned blocks = cuda::grid_for(total, kThreads);
    with_index(std::max(planes * oh * ow, total), [&](auto index) {
        using Index = decltype(index);
        if (p.mode == PoolMode::max)
            CONVNET_LAUNCH(blocks, kThreads, 0, s, pool_backward_kernel<PoolMode::max, Index>)(
                x, y, dy, dx, Index(total), g, beta);
        else
            CONVNET_LAUNCH(blocks, kThreads, 0, s, pool_backward_kernel<PoolMode::avg, Index>)(
                x, y, dy, dx, Index(total), g, beta);
    });
    CONVNET_LAUNCH_CHECK();
}

}  // namespace convnet
