// Neuron dispatch: names, checks, CPU or CUDA.
#include "ops/neuron.h"

#include <map>

#include "ops/dispatch.h"

namespace convnet {

using ops_detail::expect;
using ops_detail::expect_shape;

static const std::map<std::string, NeuronType>& neuron_names() {
    static const std::map<std::string, NeuronType> names = {
        {"ident", NeuronType::ident},       {"relu", NeuronType::relu},
        {"logistic", NeuronType::logistic}, {"tanh", NeuronType::tanh},
        {"abs", NeuronType::abs},           {"square", NeuronType::square},
        {"sqrt", NeuronType::sqrt},         {"linear", NeuronType::linear},
        {"brelu", NeuronType::brelu},       {"softrelu", NeuronType::softrelu},
        {"log", NeuronType::log},           {"drelu", NeuronType::drelu}};
    return names;
}

NeuronType neuron_type_from_name(const std::string& name) {
    auto it = neuron_names().find(name);
    if (it != neuron_names().end()) return it->second;
    std::string known;
    for (auto& [n, t] : neuron_names()) known += (known.empty() ? "" : ", ") + n;
    throw ArgumentError("neuron: unknown neuron '" + name + "'; known neurons: " + known);
}

int neuron_param_count(NeuronType type) {
    switch (type) {
        case NeuronType::tanh:
        case NeuronType::linear:
            return 2;
        case NeuronType::brelu:
        case NeuronType::log:
        case NeuronType::drelu:
            return 1;
        default:
            return 0;
    }
}

void check_fused_neuron_gradient(const NeuronParams* neuron, float beta, const char* op) {
    CONVNET_ARG_CHECK(!neuron || (beta == 0.f && !neuron_gradient_reads_input(neuron->type)),
                      op, ": a neuron fused into dx needs beta 0 and a gradient from its output");
}

void neuron_forward(const Tensor& x, const Tensor& y, const NeuronParams& p) {
    const char* op = "neuron_forward";
    expect(x, op, "x", x.dtype(), x.device());
    expect(y, op, "y", x.dtype(), x.device());
    expect_shape(y, op, "y", x.shape());
    ops_detail::run_on_device(
        op, x, CONVNET_CPU(neuron_forward_cpu<T>(x.data<T>(), y.data<T>(), x.numel(), p)),
        CONVNET_CUDA(neuron_forward_cuda(x.data<float>(), y.data<float>(), x.numel(), p, nullptr)));
}

void neuron_backward(const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                     const NeuronParams& p, float beta) {
    const char* op = "neuron_backward";
    expect(dy, op, "dy", dy.dtype(), dy.device());
    ops_detail::expect_like(dy, op, {{&x, "x"}, {&y, "y"}, {&dx, "dx"}});
    ops_detail::run_on_device(
        op, dy,
        CONVNET_CPU(neuron_backward_cpu<T>(x.data<T>(), y.data<T>(), dy.data<T>(), dx.data<T>(),
                                           dy.numel(), p, T(beta))),
        CONVNET_CUDA(neuron_backward_cuda(x.data<float>(), y.data<float>(), dy.data<float>(),
                                          dx.data<float>(), dy.numel(), p, beta, nullptr)));
}

}  // namespace convnet
