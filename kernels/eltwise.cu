// eltsum, eltmax and scale: element-wise over equally shaped flat arrays.
// Every kernel is a grid-stride loop with one float4 per thread and iteration when all its
// pointers are 16-byte aligned (element by element otherwise, and for the n%4 tail). The input
// (or output) pointers of a launch travel by value in a kernel-parameter struct of up to
// kMaxArrays entries, so any number of inputs costs one pass over y: eltsum and eltmax read each
// x once and write y once, (m + 1) * 4 bytes per element for m inputs; scale (eltsum's backward)
// reads dy once for all its outputs. Lists longer than kMaxArrays run in chunks that continue
// from y (forward) or write disjoint outputs (backward). Memory-bound: copy speed is the target.
// Formulas and order of operations are the CPU's (csrc/cpu/eltwise.cpp): eltmax is bit-exact,
// eltsum differs only where the GPU fuses a multiply-add.
#include <algorithm>

#include "csrc/ops/eltwise.h"
#include "kernels/common.cuh"

namespace convnet {

namespace {
constexpr int kThreads = 256;
constexpr int kMaxArrays = 32;

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15) == 0; }

// The inputs of one forward launch: x[k] with coefficient c[k] (eltsum only), k < count.
struct Inputs {
    const float* x[kMaxArrays];
    float c[kMaxArrays];
    int count;
};

struct SumOp {
    __device__ static float first(float x, float c) { return c * x; }
    __device__ static float step(float acc, float x, float c) { return acc + c * x; }
};
struct MaxOp {
    __device__ static float first(float x, float) { return x; }
    __device__ static float step(float acc, float x, float) { return x > acc ? x : acc; }
};

template <typename Op>
__device__ __forceinline__ float4 step4(float4 acc, float4 x, float c) {
    return make_float4(Op::step(acc.x, x.x, c), Op::step(acc.y, x.y, c), Op::step(acc.z, x.z, c),
                       Op::step(acc.w, x.w, c));
}

// y: n floats; y may be one of the inputs (the thread reads an element before writing it).
// kContinue: combine onto y's current value (a later chunk) instead of starting from x[0].
template <typename Op, bool kVec, bool kContinue>
__global__ void combine_kernel(const Inputs in, float* y, std::int64_t n) {
    const std::int64_t tid = first_index<std::int64_t>();
    const std::int64_t stride = index_stride<std::int64_t>();
    const int k0 = kContinue ? 0 : 1;
    std::int64_t scalar_from = 0;
    if (kVec) {
        const std::int64_t n4 = n / 4;
        for (std::int64_t i = tid; i < n4; i += stride) {
            float4 acc;
            if (kContinue) {
                acc = reinterpret_cast<const float4*>(y)[i];
            } else {
                const float4 x = reinterpret_cast<const float4*>(in.x[0])[i];
                const float c = in.c[0];
                acc = make_float4(Op::first(x.x, c), Op::first(x.y, c), Op::first(x.z, c),
                                  Op::first(x.w, c));
            }
#pragma unroll 4
            for (int k = k0; k < in.count; ++k)
                acc = step4<Op>(acc, reinterpret_cast<const float4*>(in.x[k])[i], in.c[k]);
            reinterpret_cast<float4*>(y)[i] = acc;
        }
        scalar_from = n4 * 4;
    }
    for (std::int64_t i = scalar_from + tid; i < n; i += stride) {
        float acc = kContinue ? y[i] : Op::first(in.x[0][i], in.c[0]);
#pragma unroll 4
        for (int k = k0; k < in.count; ++k) acc = Op::step(acc, in.x[k][i], in.c[k]);
        y[i] = acc;
    }
}

// The outputs of one scale launch: out[k] = beta*out[k] + c[k]*in.
struct Outputs {
    float* out[kMaxArrays];
    float c[kMaxArrays];
    int count;
};

__device__ __forceinline__ float scaled(float in, float c, float old, float beta,
                                        bool accumulate) {
    return accumulate ? beta * old + c * in : c * in;
}

template <bool kVec, bool kAccumulate>
__global__ void scale_kernel(const float* in, const Outputs o, std::int64_t n, float beta) {
    const std::int64_t tid = first_index<std::int64_t>();
    const std::int64_t stride = index_stride<std::int64_t>();
    std::int64_t scalar_from = 0;
    if (kVec) {
        const std::int64_t n4 = n / 4;
        for (std::int64_t i = tid; i < n4; i += stride) {
            const float4 g = reinterpret_cast<const float4*>(in)[i];
            for (int k = 0; k < o.count; ++k) {
                float4* out = reinterpret_cast<float4*>(o.out[k]) + i;
                float4 old = make_float4(0.f, 0.f, 0.f, 0.f);
                if (kAccumulate) old = *out;
                const float c = o.c[k];
                *out = make_float4(scaled(g.x, c, old.x, beta, kAccumulate),
                                   scaled(g.y, c, old.y, beta, kAccumulate),
                                   scaled(g.z, c, old.z, beta, kAccumulate),
                                   scaled(g.w, c, old.w, beta, kAccumulate));
            }
        }
        scalar_from = n4 * 4;
    }
    for (std::int64_t i = scalar_from + tid; i < n; i += stride) {
        const float g = in[i];
        for (int k = 0; k < o.count; ++k) {
            float* out = o.out[k] + i;
            *out = scaled(g, o.c[k], kAccumulate ? *out : 0.f, beta, kAccumulate);
        }
    }
}

// eltmax backward for several inputs at once: dx[k] = beta*dx[k] + (x[k] == y ? dy : 0).
struct MaxGrads {
    const float* x[kMaxArrays];
    float* dx[kMaxArrays];
    int count;
};

__device__ __forceinline__ float routed(float x, float y, float g, float old, float beta,
                                        bool accumulate) {
    const float v = x == y ? g : 0.f;
    return accumulate ? beta * old + v : v;
}

template <bool kVec, bool kAccumulate>
__global__ void eltmax_backward_kernel(const float* y, const float* dy, const MaxGrads a,
                                       std::int64_t n, float beta) {
    const std::int64_t tid = first_index<std::int64_t>();
    const std::int64_t stride = index_stride<std::int64_t>();
    std::int64_t scalar_from = 0;
    if (kVec) {
        const std::int64_t n4 = n / 4;
        for (std::int64_t i = tid; i < n4; i += stride) {
            const float4 yv = reinterpret_cast<const float4*>(y)[i];
            const float4 g = reinterpret_cast<const float4*>(dy)[i];
            for (int k = 0; k < a.count; ++k) {
                const float4 x = reinterpret_cast<const float4*>(a.x[k])[i];
                float4* out = reinterpret_cast<float4*>(a.dx[k]) + i;
                float4 old = make_float4(0.f, 0.f, 0.f, 0.f);
                if (kAccumulate) old = *out;
                *out = make_float4(routed(x.x, yv.x, g.x, old.x, beta, kAccumulate),
                                   routed(x.y, yv.y, g.y, old.y, beta, kAccumulate),
                                   routed(x.z, yv.z, g.z, old.z, beta, kAccumulate),
                                   routed(x.w, yv.w, g.w, old.w, beta, kAccumulate));
            }
        }
        scalar_from = n4 * 4;
    }
    for (std::int64_t i = scalar_from + tid; i < n; i += stride) {
        const float yv = y[i], g = dy[i];
        for (int k = 0; k < a.count; ++k) {
            float* out = a.dx[k] + i;
            *out = routed(a.x[k][i], yv, g, kAccumulate ? *out : 0.f, beta, kAccumulate);
        }
    }
}

unsigned grid_for_elements(std::int64_t n, bool vec) {
    return cuda::grid_for(vec && n >= 4 ? n / 4 : n, kThreads);
}

// eltsum / eltmax forward: chunks of kMaxArrays inputs; inputs that alias y go first, so no
// later chunk reads an input that an earlier chunk overwrote.
template <typename Op>
void combine(const std::vector<const float*>& xs, const std::vector<double>& coeffs, float* y,
             std::int64_t n, const char* op, cudaStream_t stream) {
    std::vector<std::size_t> order(xs.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_partition(order.begin(), order.end(), [&](std::size_t i) { return xs[i] == y; });
    const auto aliasing = std::count(xs.begin(), xs.end(), static_cast<const float*>(y));
    CONVNET_ARG_CHECK(aliasing <= kMaxArrays, op, ": ", aliasing,
                      " inputs are the output itself; the GPU path takes at most ", kMaxArrays);
    bool vec = aligned16(y);
    for (const float* x : xs) vec = vec && aligned16(x);
    const unsigned grid = grid_for_elements(n, vec);
    for (std::size_t start = 0; start < order.size(); start += kMaxArrays) {
        Inputs in{};
        in.count = int(std::min<std::size_t>(kMaxArrays, order.size() - start));
        for (int k = 0; k < in.count; ++k) {
            in.x[k] = xs[order[start + k]];
            in.c[k] = coeffs.empty() ? 1.f : float(coeffs[order[start + k]]);
        }
        const bool first = start == 0;
        if (vec && first)
            CONVNET_LAUNCH(grid, kThreads, 0, stream, combine_kernel<Op, true, false>)(in, y, n);
        else if (vec)
            CONVNET_LAUNCH(grid, kThreads, 0, stream, combine_kernel<Op, true, true>)(in, y, n);
        else if (first)
            CONVNET_LAUNCH(grid, kThreads, 0, stream, combine_kernel<Op, false, false>)(in, y, n);
        else
            CONVNET_LAUNCH(grid, kThreads, 0, stream, combine_kernel<Op, false, true>)(in, y, n);
        CONVNET_LAUNCH_CHECK();
    }
}

// Backward lists longer than one launch must not write what a later chunk still reads.
void check_chunked_outputs(const std::vector<float*>& outs, const std::vector<const float*>& ins,
                           const char* op) {
    if (outs.size() <= std::size_t(kMaxArrays)) return;
    for (float* out : outs)
        for (const float* in : ins)
            CONVNET_ARG_CHECK(out != in, op, ": with more than ", kMaxArrays,
                              " gradients the GPU path needs them apart from its inputs");
}

}  // namespace

void eltsum_forward_cuda(const std::vector<const float*>& xs, const std::vector<double>& coeffs,
                         float* y, std::int64_t n, void* stream) {
    if (n == 0 || xs.empty()) return;
    combine<SumOp>(xs, coeffs, y, n, "eltsum_forward", cuda::as_stream(stream));
}

void eltmax_forward_cuda(const std::vector<const float*>& xs, float* y, std::int64_t n,
                         void* stream) {
    if (n == 0 || xs.empty()) return;
    combine<MaxOp>(xs, {}, y, n, "eltmax_forward", cuda::as_stream(stream));
}

void scale_cuda(const float* in, const std::vector<double>& coeffs,
                const std::vector<float*>& outs, std::int64_t n, float beta, void* stream) {
    if (n == 0 || outs.empty()) return;
    CONVNET_CHECK(coeffs.size() == outs.size(), "scale_cuda: ", outs.size(), " outputs but ",
                  coeffs.size(), " coefficients");
    check_chunked_outputs(outs, {in}, "eltsum_backward");
    bool vec = aligned16(in);
    for (float* out : outs) vec = vec && aligned16(out);
    const unsigned grid = grid_for_elements(n, vec);
    const cudaStream_t s = cuda::as_stream(stream);
    for (std::size_t start = 0; start < outs.size(); start += kMaxArrays) {
        Outputs o{};
        o.count = int(std::min<std::size_t>(kMaxArrays, outs.size() - start));
        for (int k = 0; k < o.count; ++k) {
            o.out[k] = outs[start + k];
            o.c[k] = float(coeffs[start + k]);
        }
        const bool acc = beta != 0.f;
        if (vec && acc)
            CONVNET_LAUNCH(grid, kThreads, 0, s, scale_kernel<true, true>)(in, o, n, beta);
        else if (vec)
            CONVNET_LAUNCH(grid, kThreads, 0, s, scale_kernel<true, false>)(in, o, n, beta);
        else if (acc)
            CONVNET_LAUNCH(grid, kThreads, 0, s, scale_kernel<false, true>)(in, o, n, beta);
        else
            CONVNET_LAUNCH(grid, kThreads, 0, s, scale_kernel<false, false>)(in, o, n, beta);
        CONVNET_LAUNCH_CHECK();
    }
}

void eltmax_backward_cuda(const std::vector<const float*>& xs, const float* y, const float* dy,
                          const std::vector<float*>& dxs, std::int64_t n, float beta,
                          void* stream) {
    if (n == 0 || dxs.empty()) return;
    CONVNET_CHECK(xs.size() == dxs.size(), "eltmax_backward_cuda: ", xs.size(), " inputs but ",
                  dxs.size(), " gradients");
    std::vector<const float*> reads = xs;
    reads.push_back(y);
    reads.push_back(dy);
    check_chunked_outputs(dxs, reads, "eltmax_backward");
    bool vec = aligned16(y) && aligned16(dy);
    for (std::size_t i = 0; i < xs.size(); ++i) vec = vec && aligned16(xs[i]) && aligned16(dxs[i]);
    const unsigned grid = grid_for_elements(n, vec);
    const cudaStream_t s = cuda::as_stream(stream);
    for (std::size_t start = 0; start < dxs.size(); start += kMaxArrays) {
        MaxGrads a{};
        a.count = int(std::min<std::size_t>(kMaxArrays, dxs.size() - start));
        for (int k = 0; k < a.count; ++k) {
            a.x[k] = xs[start + k];
            a.dx[k] = dxs[start + k];
        }
        const bool acc = beta != 0.f;
        if (vec && acc)
            CONVNET_LAUNCH(grid, kThreads, 0, s, eltmax_backward_kernel<true, true>)(y, dy, a, n,
                                                                                     beta);
        else if (vec)
            CONVNET_LAUNCH(grid, kThreads, 0, s, eltmax_backward_kernel<true, false>)(y, dy, a, n,
                                                                                      beta);
        else if (acc)
            CONVNET_LAUNCH(grid, kThreads, 0, s, eltmax_backward_kernel<false, true>)(y, dy, a, n,
                                                                                      beta);
        else
            CONVNET_LAUNCH(grid, kThreads, 0, s, eltmax_backward_kernel<false, false>)(y, dy, a, n,
                                                                                       beta);
        CONVNET_LAUNCH_CHECK();
    }
}

}  // namespace convnet
