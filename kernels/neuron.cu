// Neuron kernels: one element per thread in a grid-stride loop over a flat array (any layout).
// Memory-bound: one read and one write per element forward, three reads and one write backward.
// The formulas come from csrc/math/neuron_math.h, shared with the CPU path.
#include "csrc/ops/neuron.h"
#include "kernels/common.cuh"
#include "math/neuron_math.h"

namespace convnet {

namespace {
constexpr int kThreads = 256;

template <NeuronType kType>
__global__ void neuron_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                      std::int64_t n, float a, float b) {
    for (std::int64_t i = first_index<std::int64_t>(); i < n;
         i += index_stride<std::int64_t>())
        y[i] = neuron_value<float>(kType, x[i], a, b);
}

template <NeuronType kType>
__global__ void neuron_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                                       const float* __restrict__ dy, float* __restrict__ dx,
                                       std::int64_t n, float a, float b, float beta) {
    for (std::int64_t i = first_index<std::int64_t>(); i < n;
         i += index_stride<std::int64_t>()) {
        const float g = neuron_gradient<float>(kType, x ? x[i] : 0.f, y ? y[i] : 0.f, dy[i], a, b);
        dx[i] = beta == 0.f ? g : beta * dx[i] + g;
    }
}

}  // namespace

void neuron_forward_cuda(const float* x, float* y, std::int64_t n, const NeuronParams& p,
                         void* stream) {
    if (n == 0) return;
    with_neuron_type(p.type, [&](auto type) {
        CONVNET_LAUNCH(cuda::grid_for(n, kThreads), kThreads, 0, cuda::as_stream(stream),
                       neuron_forward_kernel<decltype(type)::value>)(x, y, n, float(p.a),
                                                                     float(p.b));
    });
    CONVNET_LAUNCH_CHECK();
}

void neuron_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                          std::int64_t n, const NeuronParams& p, float beta, void* stream) {
    if (n == 0) return;
    with_neuron_type(p.type, [&](auto type) {
        CONVNET_LAUNCH(cuda::grid_for(n, kThreads), kThreads, 0, cuda::as_stream(stream),
                       neuron_backward_kernel<decltype(type)::value>)(x, y, dy, dx, n, float(p.a),
                                                                      float(p.b), beta);
    });
    CONVNET_LAUNCH_CHECK();
}

}  // namespace convnet
