// Neurons on the CPU: a threaded element-wise loop over the shared formulas.
#include "math/neuron_math.h"

#include "ops/neuron.h"

namespace convnet {

// Element-wise loops are cheap per element: only split them over threads when large.
constexpr std::int64_t kParallelThreshold = 1 << 16;

template <typename T>
void neuron_forward_cpu(const T* x, T* y, std::int64_t n, const NeuronParams& p) {
    const T a = T(p.a), b = T(p.b);
    with_neuron_type(p.type, [&](auto type) {
        constexpr NeuronType kType = decltype(type)::value;
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
        for (std::int64_t i = 0; i < n; ++i) y[i] = neuron_value<T>(kType, x[i], a, b);
    });
}

template <typename T>
void neuron_in_place_cpu(T* y, std::int64_t n, const NeuronParams& p) {
    const T a = T(p.a), b = T(p.b);
    with_neuron_type(p.type, [&](auto type) {
        constexpr NeuronType kType = decltype(type)::value;
#pragma omp simd
        for (std::int64_t i = 0; i < n; ++i) y[i] = neuron_value<T>(kType, y[i], a, b);
    });
}

template <typename T>
void neuron_gradient_in_place_cpu(const T* y, T* dx, std::int64_t n, const NeuronParams& p) {
    const T a = T(p.a), b = T(p.b);
    with_neuron_type(p.type, [&](auto type) {
        constexpr NeuronType kType = decltype(type)::value;
#pragma omp simd
        for (std::int64_t i = 0; i < n; ++i) dx[i] = neuron_gradient<T>(kType, y[i], y[i], dx[i], a, b);
    });
}

template <typename T>
void neuron_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n,
                         const NeuronParams& p, T beta) {
    const T a = T(p.a), b = T(p.b);
    with_neuron_type(p.type, [&](auto type) {
        constexpr NeuronType kType = decltype(type)::value;
#pragma omp parallel for simd schedule(static) if (n > kParallelThreshold)
        for (std::int64_t i = 0; i < n; ++i) {
            const T g = neuron_gradient<T>(kType, x[i], y[i], dy[i], a, b);
            dx[i] = beta == T(0) ? g : beta * dx[i] + g;
        }
    });
}

template void neuron_forward_cpu<float>(const float*, float*, std::int64_t, const NeuronParams&);
template void neuron_forward_cpu<double>(const double*, double*, std::int64_t, const NeuronParams&);
template void neuron_in_place_cpu<float>(float*, std::int64_t, const NeuronParams&);
template void neuron_in_place_cpu<double>(double*, std::int64_t, const NeuronParams&);
template void neuron_gradient_in_place_cpu<float>(const float*, float*, std::int64_t,
                                                  const NeuronParams&);
template void neuron_gradient_in_place_cpu<double>(const double*, double*, std::int64_t,
                                                   const NeuronParams&);
template void neuron_backward_cpu<float>(const float*, const float*, const float*, float*,
                                         std::int64_t, const NeuronParams&, float);
template void neuron_backward_cpu<double>(const double*, const double*, const double*, double*,
                                          std::int64_t, const NeuronParams&, double);

}  // namespace convnet
