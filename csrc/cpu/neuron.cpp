// Neurons on the CPU: a threaded element-wise loop over the shared formulas.
#include "kernels/neuron_math.h"

#include "ops/neuron.h"

namespace convnet {

template <typename T>
void neuron_forward_cpu(const T* x, T* y, std::int64_t n, const NeuronParams& p) {
    const T a = T(p.a), b = T(p.b);
    const NeuronType type = p.type;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (std::int64_t i = 0; i < n; ++i) y[i] = neuron_value<T>(type, x[i], a, b);
}

template <typename T>
void neuron_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n,
                         const NeuronParams& p, T beta) {
    const T a = T(p.a), b = T(p.b);
    const NeuronType type = p.type;
#pragma omp parallel for schedule(static) if (n > 32768)
    for (std::int64_t i = 0; i < n; ++i) {
        const T g = neuron_gradient<T>(type, x[i], y[i], dy[i], a, b);
        dx[i] = beta == T(0) ? g : beta * dx[i] + g;
    }
}

template void neuron_forward_cpu<float>(const float*, float*, std::int64_t, const NeuronParams&);
template void neuron_forward_cpu<double>(const double*, double*, std::int64_t, const NeuronParams&);
template void neuron_backward_cpu<float>(const float*, const float*, const float*, float*,
                                         std::int64_t, const NeuronParams&, float);
template void neuron_backward_cpu<double>(const double*, const double*, const double*, double*,
                                          std::int64_t, const NeuronParams&, double);

}  // namespace convnet
