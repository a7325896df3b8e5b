// Neuron kernels: one element per thread in a grid-stride loop over a flat array (any layout).
// Memory-bound: one read and one write per element forward, three reads and one write backward.
// The formulas come from kernels/neuron_math.h, shared with the CPU path.
#include "csrc/ops/neuron.h"
#include "kernels/common.cuh"
#include "kernels/neuron_math.h"

namespace convnet {

namespace {
constexpr int kThreads = 256;

template <NeuronType kType>
__global__ void neuron_forward_kernel(const float* __restrict__ x, float* __restrict__ y,
                                      std::int64_t n, float a, float b) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x)
        y[i] = neuron_value<float>(kType, x[i], a, b);
}

template <NeuronType kType>
__global__ void neuron_backward_kernel(const float* __restrict__ x, const float* __restrict__ y,
                                       const float* __restrict__ dy, float* __restrict__ dx,
                                       std::int64_t n, float a, float b, float beta) {
    for (std::int64_t i = blockIdx.x * std::int64_t(blockDim.x) + threadIdx.x; i < n;
         i += std::int64_t(gridDim.x) * blockDim.x) {
        const float g = neuron_gradient<float>(kType, x ? x[i] : 0.f, y ? y[i] : 0.f, dy[i], a, b);
        dx[i] = beta == 0.f ? g : beta * dx[i] + g;
    }
}

// The neuron type is a template parameter so each kernel is a branch-free loop.
template <template <NeuronType> class Launch, typename... Args>
void with_neuron_type(NeuronType type, Args&&... args) {
    switch (type) {
#define CONVNET_NEURON_CASE(T) \
    case NeuronType::T: Launch<NeuronType::T>::run(args...); return;
        CONVNET_NEURON_CASE(ident) CONVNET_NEURON_CASE(relu) CONVNET_NEURON_CASE(logistic)
        CONVNET_NEURON_CASE(tanh) CONVNET_NEURON_CASE(abs) CONVNET_NEURON_CASE(square)
        CONVNET_NEURON_CASE(sqrt) CONVNET_NEURON_CASE(linear) CONVNET_NEURON_CASE(brelu)
        CONVNET_NEURON_CASE(softrelu) CONVNET_NEURON_CASE(log) CONVNET_NEURON_CASE(drelu)
#undef CONVNET_NEURON_CASE
    }
    throw ArgumentError("neuron: unknown neuron type");
}

template <NeuronType kType>
struct ForwardLaunch {
    static void run(const float* x, float* y, std::int64_t n, float a, float b,
                    cudaStream_t stream) {
        neuron_forward_kernel<kType><<<cuda::grid_for(n, kThreads), kThreads, 0, stream>>>(x, y, n,
                                                                                          a, b);
        CONVNET_LAUNCH_CHECK();
    }
};

template <NeuronType kType>
struct BackwardLaunch {
    static void run(const float* x, const float* y, const float* dy, float* dx, std::int64_t n,
                    float a, float b, float beta, cudaStream_t stream) {
        neuron_backward_kernel<kType>
            <<<cuda::grid_for(n, kThreads), kThreads, 0, stream>>>(x, y, dy, dx, n, a, b, beta);
        CONVNET_LAUNCH_CHECK();
    }
};
}  // namespace

void neuron_forward_cuda(const float* x, float* y, std::int64_t n, const NeuronParams& p,
                         void* stream) {
    if (n == 0) return;
    with_neuron_type<ForwardLaunch>(p.type, x, y, n, float(p.a), float(p.b),
                                    cuda::as_stream(stream));
}

void neuron_backward_cuda(const float* x, const float* y, const float* dy, float* dx,
                          std::int64_t n, const NeuronParams& p, float beta, void* stream) {
    if (n == 0) return;
    with_neuron_type<BackwardLaunch>(p.type, x, y, dy, dx, n, float(p.a), float(p.b), beta,
                                     cuda::as_stream(stream));
}

}  // namespace convnet
