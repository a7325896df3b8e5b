// Neurons on the CPU: element-wise loops over the shared formulas, threaded where large, and
// the same loops on the calling thread for the ops that fuse a neuron into their own threads.
#include <algorithm>

#include "cpu/blas.h"
#include "math/neuron_math.h"
#include "ops/neuron.h"

namespace convnet {

namespace {
// Element-wise loops are cheap per element: only split them over threads when large.
constexpr std::int64_t kParallelThreshold = 1 << 16;

// y = neuron(x) over n elements, on the calling thread (x may be y).
template <typename T>
void values(const T* x, T* y, std::int64_t n, const NeuronParams& p) {
    const T a = T(p.a), b = T(p.b);
    with_neuron_type(p.type, [&](auto type) {
        constexpr NeuronType kType = decltype(type)::value;
#pragma omp simd
        for (std::int64_t i = 0; i < n; ++i) y[i] = neuron_value<T>(kType, x[i], a, b);
    });
}

// dx = beta * dx + neuron'(x, y) * dy over n elements, on the calling thread (dy may be dx).
template <typename T>
void gradients(const T* x, const T* y, const T* dy, T* dx, std::int64_t n, const NeuronParams& p,
               T beta) {
    const T a = T(p.a), b = T(p.b);
    with_neuron_type(p.type, [&](auto type) {
        constexpr NeuronType kType = decltype(type)::value;
#pragma omp simd
        for (std::int64_t i = 0; i < n; ++i) {
            const T g = neuron_gradient<T>(kType, x[i], y[i], dy[i], a, b);
            dx[i] = beta == T(0) ? g : beta * dx[i] + g;
        }
    });
}

// Runs f(first, count) over [0, n) in one contiguous piece per thread where n is large.
template <typename F>
void split(std::int64_t n, F&& f) {
    const int threads = n > kParallelThreshold ? blas::threads_for(n) : 1;
    const std::int64_t piece = (n + threads - 1) / threads;
    blas::for_each_item(threads, threads, [&](std::int64_t t, int) {
        const std::int64_t first = t * piece;
        if (first < n) f(first, std::min(piece, n - first));
    });
}
}  // namespace

template <typename T>
void neuron_forward_cpu(const T* x, T* y, std::int64_t n, const NeuronParams& p) {
    split(n, [&](std::int64_t i, std::int64_t count) { values(x + i, y + i, count, p); });
}

template <typename T>
void neuron_in_place_cpu(T* y, std::int64_t n, const NeuronParams& p) {
    values(y, y, n, p);
}

template <typename T>
void neuron_gradient_in_place_cpu(const T* y, T* dx, std::int64_t n, const NeuronParams& p) {
    gradients(y, y, dx, dx, n, p, T(0));
}

template <typename T>
void neuron_backward_cpu(const T* x, const T* y, const T* dy, T* dx, std::int64_t n,
                         const NeuronParams& p, T beta) {
    split(n, [&](std::int64_t i, std::int64_t count) {
        gradients(x + i, y + i, dy + i, dx + i, count, p, beta);
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
