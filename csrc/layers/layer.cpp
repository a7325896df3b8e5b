// LayerConfig accessors, the Layer base's helpers and the type registry.
#include "layers/layer.h"

#include <mutex>

#include "ops/neuron.h"

namespace convnet {

bool LayerConfig::has(const std::string& key) const {
    return numbers.count(key) || strings.count(key);
}

const std::vector<double>& LayerConfig::list(const std::string& key) const {
    auto it = numbers.find(key);
    if (it == numbers.end())
        throw Error(detail::concat("layer '", name, "' (type ", type, "): missing key '", key,
                                   "'"));
    return it->second;
}

double LayerConfig::number(const std::string& key) const {
    const auto& values = list(key);
    CONVNET_CHECK(!values.empty(), "layer '", name, "': key '", key, "' is empty");
    return values[0];
}

double LayerConfig::number(const std::string& key, double fallback) const {
    return numbers.count(key) ? number(key) : fallback;
}

int LayerConfig::integer(const std::string& key) const { return static_cast<int>(number(key)); }

int LayerConfig::integer(const std::string& key, int fallback) const {
    return numbers.count(key) ? integer(key) : fallback;
}

const std::string& LayerConfig::string(const std::string& key) const {
    auto it = strings.find(key);
    if (it == strings.end())
        throw Error(detail::concat("layer '", name, "' (type ", type, "): missing key '", key,
                                   "'"));
    return it->second;
}

void Layer::forward_with_neuron(const std::vector<Tensor>& in, const Tensor& out,
                                const NeuronParams& neuron, const StepContext& ctx) {
    forward(in, out, ctx);
    neuron_forward(out, out, neuron);
}

void Layer::backward_with_neuron(const std::vector<Tensor>& in, const Tensor& out,
                                 const Tensor& dout, const std::vector<Tensor>& din,
                                 const std::vector<float>& beta, const StepContext& ctx,
                                 std::size_t k, const NeuronParams& neuron) {
    backward(in, out, dout, din, beta, ctx);
    if (din[k].defined()) neuron_backward(in[k], in[k], din[k], din[k], neuron);
}

void Layer::shape_error(const std::string& what, const Shape& expected,
                        const Shape& found) const {
    throw ShapeError(detail::concat("layer '", name(), "' (type ", config_.type, "): ", what,
                                    ": expected ", shape_str(expected), ", found ",
                                    shape_str(found)));
}

void Layer::expect_inputs(const std::vector<Shape>& inputs, std::size_t count) const {
    CONVNET_ARG_CHECK(inputs.size() == count, "layer '", name(), "' (type ", config_.type,
                      "): takes ", count, " input(s), got ", inputs.size());
}

std::int64_t Layer::expect_image(const Shape& input) const {
    const std::int64_t channels = config_.integer("channels");
    if (input.size() != 3 || input[0] != channels)
        shape_error("input must be channels x height x width with channels=" +
                        std::to_string(channels),
                    {channels, -1, -1}, input);
    return channels;
}

void Layer::fused_softmax_backward(const Tensor&, const Tensor&, const Tensor&, float) {
    throw Error(detail::concat("layer '", name(), "' (type ", config_.type,
                               "): does not fuse with a softmax"));
}

Param& Layer::add_param(const std::string& name, const Shape& shape, DType dtype) {
    Param p;
    p.name = name;
    p.value = Tensor::zeros(shape, dtype, device_);
    p.grad = Tensor::zeros(shape, dtype, device_);
    p.velocity = Tensor::zeros(shape, dtype, device_);
    params_.push_back(std::move(p));
    return params_.back();
}

namespace {
std::map<std::string, LayerFactory>& registry() {
    static std::map<std::string, LayerFactory> factories;
    return factories;
}
}  // namespace

void register_layer(const std::string& type, LayerFactory factory) {
    CONVNET_CHECK(!registry().count(type), "layer type '", type, "' registered twice");
    registry()[type] = factory;
}

std::unique_ptr<Layer> make_layer(const LayerConfig& config) {
    static std::once_flag once;
    std::call_once(once, register_builtin_layers);
    auto it = registry().find(config.type);
    if (it == registry().end()) {
        std::string known;
        for (auto& [type, f] : registry()) known += (known.empty() ? "" : ", ") + type;
        throw ArgumentError(detail::concat("layer '", config.name, "': unknown type '",
                                           config.type, "'; known types: ", known));
    }
    return it->second(config);
}

std::vector<std::string> registered_layer_types() {
    static std::once_flag once;
    std::call_once(once, register_builtin_layers);
    std::vector<std::string> types;
    for (auto& [type, f] : registry()) types.push_back(type);
    return types;
}

}  // namespace convnet
