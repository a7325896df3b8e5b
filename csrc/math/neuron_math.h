// The element-wise functions of cuda-convnet's neurons (docs/cuda-convnet-format.md, section 3),
// forward and derivative, shared by csrc/cpu/neuron.cpp and kernels/neuron.cu. Each derivative
// takes the input x and output y and uses whichever is cheaper and exact; relu and brelu use the
// output, as cuda-convnet does.
#pragma once

#include <cmath>
#include <type_traits>

#include "math/hostdevice.h"

namespace convnet {

enum class NeuronType { ident, relu, logistic, tanh, abs, square, sqrt, linear, brelu, softrelu,
                        log, drelu };

struct NeuronParams {
    NeuronType type = NeuronType::ident;
    double a = 1.0;  // tanh/linear scale, brelu bound, log offset, drelu scale
    double b = 0.0;  // tanh inner scale, linear offset
};

template <typename T>
CONVNET_HD T neuron_value(NeuronType type, T x, T a, T b) {
    switch (type) {
        case NeuronType::ident: return x;
        // Written as (x < 0) ? 0 : x, the form compilers turn into a vector max (NaN passes).
        case NeuronType::relu: return x < T(0) ? T(0) : x;
        case NeuronType::logistic: return T(1) / (T(1) + std::exp(-x));
        case NeuronType::tanh: return a * std::tanh(b * x);
        case NeuronType::abs: return std::fabs(x);
        case NeuronType::square: return x * x;
        case NeuronType::sqrt: return std::sqrt(x);
        case NeuronType::linear: return a * x + b;
        case NeuronType::brelu: return x < T(0) ? T(0) : (a < x ? a : x);
        // log(1 + e^x) without overflow: for x > 0 it equals x + log(1 + e^-x).
        case NeuronType::softrelu:
            return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
        case NeuronType::log: return std::log(a + x);
        case NeuronType::drelu: return x - a * std::tanh(x / a);
    }
    return x;
}

// dL/dx given dL/dy = dy.
template <typename T>
CONVNET_HD T neuron_gradient(NeuronType type, T x, T y, T dy, T a, T b) {
    switch (type) {
        case NeuronType::ident: return dy;
        case NeuronType::relu: return y > T(0) ? dy : T(0);
        case NeuronType::logistic: return dy * y * (T(1) - y);
        case NeuronType::tanh: {
            const T t = std::tanh(b * x);  // from x: y/a is undefined when a == 0
            return dy * a * b * (T(1) - t * t);
        }
        case NeuronType::abs: return x > T(0) ? dy : (x < T(0) ? -dy : T(0));
        case NeuronType::square: return dy * T(2) * x;
        case NeuronType::sqrt: return dy / (T(2) * y);
        case NeuronType::linear: return dy * a;
        case NeuronType::brelu: return (y > T(0) && y < a) ? dy : T(0);
        case NeuronType::softrelu: return dy / (T(1) + std::exp(-x));  // the logistic of x
        case NeuronType::log: return dy / (a + x);
        case NeuronType::drelu: {
            const T t = std::tanh(x / a);
            return dy * t * t;
        }
    }
    return dy;
}

// Whether neuron_gradient reads x. Where it does not, a layer may write the neuron's output in
// place of its own (the net fuses the two, graph/net.h) and backward passes y for x.
constexpr bool neuron_gradient_reads_input(NeuronType type) {
    switch (type) {
        case NeuronType::ident: case NeuronType::relu: case NeuronType::logistic:
        case NeuronType::sqrt: case NeuronType::linear: case NeuronType::brelu:
            return false;
        default:
            return true;
    }
}

// Calls f(std::integral_constant<NeuronType, type>{}) so that the loops of the CPU path and the
// kernels are instantiated per neuron type: branch-free, and vectorisable on the CPU.
template <typename F>
inline void with_neuron_type(NeuronType type, F&& f) {
    switch (type) {
#define CONVNET_NEURON_CASE(T) \
    case NeuronType::T: f(std::integral_constant<NeuronType, NeuronType::T>{}); return;
        CONVNET_NEURON_CASE(ident) CONVNET_NEURON_CASE(relu) CONVNET_NEURON_CASE(logistic)
        CONVNET_NEURON_CASE(tanh) CONVNET_NEURON_CASE(abs) CONVNET_NEURON_CASE(square)
        CONVNET_NEURON_CASE(sqrt) CONVNET_NEURON_CASE(linear) CONVNET_NEURON_CASE(brelu)
        CONVNET_NEURON_CASE(softrelu) CONVNET_NEURON_CASE(log) CONVNET_NEURON_CASE(drelu)
#undef CONVNET_NEURON_CASE
    }
}

}  // namespace convnet
