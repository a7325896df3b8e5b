// Layers: one class per cfg `type=`, owning its parameters, checking its input shapes when the net
// is built, and calling ops. Shapes here are per sample (no batch dimension); tensors passed to
// forward/backward carry the batch first.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/tensor.h"
#include "math/neuron_math.h"

namespace convnet {

// A layer as the config files define it, converted from Python's LayerSpec by the bindings:
// numbers (ints, floats and booleans as doubles; per-input keys as lists) and strings.
struct LayerConfig {
    std::string name, type;
    std::vector<int> inputs;  // indices of earlier layers in the net
    int device = 0;           // logical device (cfg gpu=); the net maps it to a physical one
    std::map<std::string, std::vector<double>> numbers;
    std::map<std::string, std::string> strings;

    bool has(const std::string& key) const;
    double number(const std::string& key) const;               // a scalar key
    double number(const std::string& key, double fallback) const;
    int integer(const std::string& key) const;
    int integer(const std::string& key, int fallback) const;
    const std::vector<double>& list(const std::string& key) const;
    const std::string& string(const std::string& key) const;
};

// A learned tensor with its gradient and momentum, and the SGD hyper-parameters in force.
struct Param {
    std::string name;  // "weights", "weights.1", "biases"
    Tensor value, grad, velocity;
    double eps = 0.0, mom = 0.0, wc = 0.0;
};

// What one forward/backward pass needs to know beyond its tensors.
struct StepContext {
    bool train = true;
    std::uint64_t seed = 0, step = 0;
    // Where this batch's first image is in the global batch it is a shard of (data parallelism):
    // random streams are indexed by global position, so the shards draw the global batch's.
    std::uint64_t sample_offset = 0;
};

// The losses and error counts a cost layer reports for the last forward pass.
struct CostReport {
    double loss = 0.0;  // summed over the batch, before coeff
    std::int64_t top1_errors = 0, topk_errors = 0, samples = 0;
};

class Layer {
public:
    explicit Layer(const LayerConfig& config) : config_(config) {}
    virtual ~Layer() = default;
    Layer(const Layer&) = delete;
    Layer& operator=(const Layer&) = delete;

    const LayerConfig& config() const { return config_; }
    const std::string& name() const { return config_.name; }
    int index() const { return index_; }
    void set_index(int index) { index_ = index; }
    // Where the parameters live; set by the net before setup().
    Device device() const { return device_; }
    void set_device(Device device) { device_ = device; }

    // The per-sample output shape for these per-sample input shapes; creates the parameters.
    // Throws ShapeError naming the layer, what it expected and what it found.
    virtual Shape setup(const std::vector<Shape>& inputs, DType dtype) = 0;
    // out is (N, output shape...), allocated by the net.
    virtual void forward(const std::vector<Tensor>& in, const Tensor& out,
                         const StepContext& ctx) = 0;
    // din[i] (undefined where no gradient is wanted) receives beta[i]*din[i] + dL/din[i]; also
    // fills every Param's grad. dout is undefined for cost layers.
    virtual void backward(const std::vector<Tensor>& in, const Tensor& out, const Tensor& dout,
                          const std::vector<Tensor>& din, const std::vector<float>& beta,
                          const StepContext& ctx) = 0;

    // Neuron fusion (graph/net.h): forward, then y = neuron(y), written to `out`. The default
    // runs the neuron as a second pass; conv and pool apply it while each piece of output is in
    // cache.
    virtual void forward_with_neuron(const std::vector<Tensor>& in, const Tensor& out,
                                     const NeuronParams& neuron, const StepContext& ctx);
    // Neuron fusion in backward: input `k` of this layer is the output of `neuron`, and din[k]
    // (beta 0) receives the gradient of the neuron's input instead of its output. The default
    // applies the neuron's gradient in place after backward; conv and pool apply it per image or
    // plane while in cache.
    virtual void backward_with_neuron(const std::vector<Tensor>& in, const Tensor& out,
                                      const Tensor& dout, const std::vector<Tensor>& din,
                                      const std::vector<float>& beta, const StepContext& ctx,
                                      std::size_t k, const NeuronParams& neuron);
    // Per-image pipelining (graph/net.h), a producer's side: forward (then the neuron, where
    // given), calling after_image(n) as soon as image n of `out` is written, from its threads.
    // Returns false, having done nothing, where this layer cannot (the default).
    virtual bool forward_with_image_hook(const std::vector<Tensor>& in, const Tensor& out,
                                         const NeuronParams* neuron,
                                         const std::function<void(std::int64_t)>& after_image,
                                         const StepContext& ctx) {
        (void)in, (void)out, (void)neuron, (void)after_image, (void)ctx;
        return false;
    }
    // The consumer's side: whether this layer can compute one image's output at a time on the
    // calling thread; begin_images (on the net's thread, before the producer runs), then
    // forward_image for each image, concurrently for different images.
    virtual bool runs_by_image() const { return false; }
    virtual void begin_images(const Tensor& out) { (void)out; }
    virtual void forward_image(const std::vector<Tensor>& in, const Tensor& out, std::int64_t n,
                               const NeuronParams* neuron) {
        (void)in, (void)out, (void)n, (void)neuron;
    }
    // Whether backward reads `out`: a layer that does not may have a neuron fused into it.
    virtual bool backward_reads_output() const { return true; }
    // The neuron a type=neuron layer applies; null for every other layer.
    virtual const NeuronParams* neuron() const { return nullptr; }

    // What the net treats specially, asked once when it is built (never by type= string).
    virtual bool is_cost() const { return false; }
    virtual bool is_data() const { return false; }
    virtual bool is_softmax() const { return false; }
    // A cost (cost.logreg) whose backward can start from the input of the softmax feeding it.
    virtual bool fuses_with_softmax() const { return false; }

    // For layers that fuse with a softmax (cost.logreg directly after one): the gradient of the
    // cost with respect to the softmax's input x, coeff/N * (probs - onehot(labels)), written as
    // dx = beta*dx + that. Exact where the two-step path divides by a probability that
    // underflowed to zero.
    virtual void fused_softmax_backward(const Tensor& x, const Tensor& probs, const Tensor& dx,
                                        float beta);
    virtual CostReport cost_report() const { return {}; }
    std::vector<Param>& params() { return params_; }
    // A frozen layer's parameters get no gradients and no updates (transfer learning): backward
    // leaves their grads as they were, and the net skips them in update.
    bool frozen() const { return frozen_; }
    void set_frozen(bool frozen) { frozen_ = frozen; }
    // Whether training changes this layer: it has parameters and they are not frozen.
    bool trains() const { return !frozen_ && !params_.empty(); }
    // Backward passes that computed this layer's parameter gradients.
    std::int64_t param_gradient_passes() const { return param_gradient_passes_; }
    // Multiply-adds per sample of the forward pass, for summaries.
    virtual double flops_per_sample() const { return 0.0; }

protected:
    [[noreturn]] void shape_error(const std::string& what, const Shape& expected,
                                  const Shape& found) const;
    void expect_inputs(const std::vector<Shape>& inputs, std::size_t count) const;
    // Reads the `channels` key and checks that `input` is channels x height x width.
    std::int64_t expect_image(const Shape& input) const;
    Param& add_param(const std::string& name, const Shape& shape, DType dtype);
    // Whether this backward pass computes the parameter gradients (not frozen); counts it.
    bool computes_param_gradients() {
        if (!trains()) return false;
        ++param_gradient_passes_;
        return true;
    }

    LayerConfig config_;
    std::vector<Param> params_;
    int index_ = 0;
    Device device_ = Device::cpu();
    bool frozen_ = false;
    std::int64_t param_gradient_passes_ = 0;
};

// The variant a layer class that runs several type= strings (cmrnorm, rnorm, cnorm, say) is,
// resolved once when the layer is built so that forward and backward compare no strings.
template <typename Kind>
Kind kind_of(const LayerConfig& config,
             std::initializer_list<std::pair<const char*, Kind>> kinds) {
    for (const auto& [type, kind] : kinds)
        if (config.type == type) return kind;
    throw Error(detail::concat("layer '", config.name, "': type '", config.type,
                               "' is not one this layer class runs"));
}

using LayerFactory = std::unique_ptr<Layer> (*)(const LayerConfig&);
// Explicit registry keyed by `type=` (one table in registry.cpp, no registration by static
// initialisers); a duplicate name throws.
void register_layer(const std::string& type, LayerFactory factory);
std::unique_ptr<Layer> make_layer(const LayerConfig& config);
void register_builtin_layers();
std::vector<std::string> registered_layer_types();

}  // namespace convnet
