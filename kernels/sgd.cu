// The SGD update, v <- mom*v - wc*eps*w - eps*grad; w <- w + v, fused into one pass.
// Grid-stride loop, one float4 of each tensor per thread and iteration where w, grad and v are
// 16-byte aligned (always, for tensors from the caching allocator), element by element
// otherwise. Purely memory-bound: 20 bytes per parameter (read w, grad, v; write w, v), e.g.
// 754 MB for the 37.7M weights of AlexNet's fc6, ~0.23 ms at 3.35 TB/s; 16-byte accesses and a
// grid of one float4 per thread keep enough loads in flight to run near copy bandwidth.
#include "csrc/ops/sgd.h"
#include "kernels/common.cuh"

namespace convnet {

namespace {
constexpr int kThreads = 256;

bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15) == 0; }

struct Step {
    float mom, decay, eps;  // decay = wc * eps, as on the CPU

    __device__ __forceinline__ void operator()(float& w, float g, float& v) const {
        const float vn = mom * v - decay * w - eps * g;
        v = vn;
        w += vn;
    }
};

// w, grad, v: n floats. Each of the first n/4 iterations moves one float4; the n%4 tail
// elements go to the first threads of the grid.
template <bool kVec>
__global__ void sgd_update_kernel(float* __restrict__ w, const float* __restrict__ grad,
                                  float* __restrict__ v, std::int64_t n, Step step) {
    const std::int64_t tid = first_index<std::int64_t>();
    const std::int64_t stride = index_stride<std::int64_t>();
    std::int64_t scalar_from = 0;
    if (kVec) {
        const std::int64_t n4 = n / 4;
        auto* w4 = reinterpret_cast<float4*>(w);
        auto* v4 = reinterpret_cast<float4*>(v);
        const auto* g4 = reinterpret_cast<const float4*>(grad);
        for (std::int64_t i = tid; i < n4; i += stride) {
            float4 wv = w4[i], vv = v4[i];
            const float4 gv = g4[i];
            step(wv.x, gv.x, vv.x);
            step(wv.y, gv.y, vv.y);
            step(wv.z, gv.z, vv.z);
            step(wv.w, gv.w, vv.w);
            w4[i] = wv;
            v4[i] = vv;
        }
        scalar_from = n4 * 4;
    }
    for (std::int64_t i = scalar_from + tid; i < n; i += stride) {
        float wi = w[i], vi = v[i];
        step(wi, grad[i], vi);
        w[i] = wi;
        v[i] = vi;
    }
}

}  // namespace

void sgd_update_cuda(float* w, const float* grad, float* v, std::int64_t n, const SgdParams& p,
                     void* stream) {
    if (n == 0) return;
    const Step step{float(p.mom), float(p.wc * p.eps), float(p.eps)};
    const cudaStream_t s = cuda::as_stream(stream);
    if (aligned16(w) && aligned16(grad) && aligned16(v)) {
        const std::int64_t work = n / 4 > 0 ? n / 4 : n;
        CONVNET_LAUNCH(cuda::grid_for(work, kThreads), kThreads, 0, s, sgd_update_kernel<true>)(
            w, grad, v, n, step);
    } else {
        CONVNET_LAUNCH(cuda::grid_for(n, kThreads), kThreads, 0, s, sgd_update_kernel<false>)(
            w, grad, v, n, step);
    }
    CONVNET_LAUNCH_CHECK();
}

}  // namespace convnet
