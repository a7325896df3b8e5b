// type=conv and type=local: convolution with shared filters, and with one filter bank per output
// position. Output size by cuda-convnet's rule (1 + ceil((2*padding + size - filterSize) /
// stride)) unless modulesX overrides it; non-square images work, each axis on its own.
// Several inputs, as upstream: each input has its own channels, filterSize, stride, padding,
// groups and weights ("weights", "weights.1", ...); their outputs must agree in size and are
// summed, with one set of biases. sharedBiases=0 gives conv one bias per filter and position.
#include <cmath>

#include "layers/layer.h"
#include "ops/bias.h"
#include "ops/conv.h"
#include "ops/eltwise.h"
#include "ops/local.h"
#include "ops/neuron.h"

namespace convnet {

namespace {
class ConvLayer : public Layer {
public:
    ConvLayer(const LayerConfig& c, bool local) : Layer(c), local_(local) {}

    Shape setup(const std::vector<Shape>& in, DType dtype) override {
        CONVNET_ARG_CHECK(!in.empty(), "layer '", name(), "': needs an input");
        unshared_bias_ = local_ || config_.number("sharedBiases", 1.0) == 0.0;
        const int modules = config_.integer("modulesX", 0);
        std::int64_t oh = 0, ow = 0, filters = 0;
        inputs_.clear();
        for (std::size_t i = 0; i < in.size(); ++i) {
            Input p;
            p.channels = per_input("channels", i, -1);
            if (in[i].size() != 3 || in[i][0] != p.channels)
                shape_error("input " + std::to_string(i) + " must be channels x height x width "
                                "with channels=" + std::to_string(p.channels),
                            {p.channels, -1, -1}, in[i]);
            p.groups = per_input("groups", i, 1);
            p.size = per_input("filterSize", i, -1);
            p.stride = per_input("stride", i, 1);
            p.pad = per_input("padding", i, 0);
            if (p.channels % p.groups)
                throw ShapeError(detail::concat("layer '", name(), "': groups=", p.groups,
                                                " must divide channels=", p.channels));
            const std::int64_t f = std::int64_t(config_.integer("filters")) * p.groups;
            const std::int64_t h = modules > 0 ? modules : out_size(p, in[i][1]);
            const std::int64_t w = modules > 0 ? modules : out_size(p, in[i][2]);
            if (i == 0) {
                oh = h, ow = w, filters = f;
            } else if (h != oh || w != ow || f != filters) {
                shape_error("every input must give the same output (filters*groups x height x "
                                "width) as input 0; input " + std::to_string(i),
                            {filters, oh, ow}, {f, h, w});
            }
            inputs_.push_back(p);
        }
        filters_ = filters;
        flops_ = 0.0;
        for (std::size_t i = 0; i < in.size(); ++i) {
            const Input& p = inputs_[i];
            const std::string wname = i == 0 ? "weights" : "weights." + std::to_string(i);
            if (local_)
                add_param(wname, {oh, ow, filters_, p.channels / p.groups, p.size, p.size}, dtype);
            else
                add_param(wname, {filters_, p.channels / p.groups, p.size, p.size}, dtype);
            flops_ += double(filters_) * oh * ow * (p.channels / p.groups) * p.size * p.size;
        }
        if (unshared_bias_)
            add_param("biases", {filters_, oh, ow}, dtype);
        else
            add_param("biases", {filters_}, dtype);
        return {filters_, oh, ow};
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        run_all(in, out, nullptr);
    }

    void forward_with_neuron(const std::vector<Tensor>& in, const Tensor& out,
                             const NeuronParams& neuron, const StepContext&) override {
        run_all(in, out, &neuron);
    }

    bool backward_reads_output() const override { return false; }

    bool forward_with_image_hook(const std::vector<Tensor>& in, const Tensor& out,
                                 const NeuronParams* neuron,
                                 const std::function<void(std::int64_t)>& after_image,
                                 const StepContext&) override {
        if (!single_conv(in) || !out.device().is_cpu()) return false;
        conv_forward(in[0], params_[0].value, bias().value, out, geometry(0, in[0], out), neuron,
                     &after_image);
        return true;
    }

    void backward(const std::vector<Tensor>& in, const Tensor&, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        run_backward(in, dout, din, beta, in.size(), nullptr);
    }

    void backward_with_neuron(const std::vector<Tensor>& in, const Tensor& out,
                              const Tensor& dout, const std::vector<Tensor>& din,
                              const std::vector<float>& beta, const StepContext& ctx,
                              std::size_t k, const NeuronParams& neuron) override {
        if (local_) return Layer::backward_with_neuron(in, out, dout, din, beta, ctx, k, neuron);
        run_backward(in, dout, din, beta, k, &neuron);
    }

    double flops_per_sample() const override { return flops_; }

private:
    struct Input {
        std::int64_t channels = 0, size = 0;
        int groups = 1, stride = 1, pad = 0;
    };

    // The i-th entry of a per-input key; a single value applies to every input.
    int per_input(const std::string& key, std::size_t i, int fallback) const {
        if (!config_.has(key)) {
            if (fallback < 0)
                throw ArgumentError(detail::concat("layer '", name(), "': missing key '", key,
                                                   "'"));
            return fallback;
        }
        const auto& values = config_.list(key);
        CONVNET_ARG_CHECK(!values.empty(), "layer '", name(), "': key '", key, "' is empty");
        return static_cast<int>(values[i < values.size() ? i : 0]);
    }

    std::int64_t out_size(const Input& p, std::int64_t size) const {
        const std::int64_t span = 2 * p.pad + size - p.size;
        if (span < 0)
            throw ShapeError(detail::concat("layer '", name(), "': filterSize=", p.size,
                                            " does not fit an input of ", size, " with padding ",
                                            p.pad));
        return 1 + (span + p.stride - 1) / p.stride;
    }

    // Every input's gradients; input k's dx is that of the neuron whose output it is, where given.
    void run_backward(const std::vector<Tensor>& in, const Tensor& dout,
                      const std::vector<Tensor>& din, const std::vector<float>& beta,
                      std::size_t k, const NeuronParams* neuron) {
        const bool op_bias = local_ || !unshared_bias_;
        const bool param_grads = computes_param_gradients();
        for (std::size_t i = 0; i < in.size(); ++i) {
            const ConvGeometry g = geometry(i, in[i], dout);
            const Tensor& w = params_[i].value;
            const Tensor db = i == 0 && op_bias ? bias().grad : Tensor();
            if (local_) {
                if (din[i].defined()) local_backward(in[i], w, dout, din[i], {}, {}, g, beta[i]);
                if (param_grads) local_backward(in[i], w, dout, {}, params_[i].grad, db, g, 0.f);
            } else {
                if (din[i].defined())
                    conv_backward(in[i], w, dout, din[i], {}, {}, g, beta[i],
                                  i == k ? neuron : nullptr);
                if (param_grads) conv_backward(in[i], w, dout, {}, params_[i].grad, db, g, 0.f);
            }
        }
        if (!op_bias && param_grads) bias_add_backward(dout, bias().grad, 0.f);
    }

    // Whether one conv_forward call writes the whole output, bias included: a shared-bias conv of
    // one input. Only then can the op apply a fused neuron, or hand images over as they are done.
    bool single_conv(const std::vector<Tensor>& in) const {
        return !local_ && !unshared_bias_ && in.size() == 1;
    }

    // Every input's convolution summed, the bias, then the neuron where one is fused: inside the
    // convolution where it is the last step (single_conv), else as a pass.
    void run_all(const std::vector<Tensor>& in, const Tensor& out, const NeuronParams* neuron) {
        // Bias with input 0 where the op takes it (shared conv bias, local's per-position bias).
        const bool op_bias = local_ || !unshared_bias_;
        const bool op_neuron = single_conv(in);
        run_forward(0, in[0], op_bias ? bias().value : Tensor(), out,
                    op_neuron ? neuron : nullptr);
        for (std::size_t i = 1; i < in.size(); ++i) {
            Tensor part = Tensor::empty(out.shape(), out.dtype(), out.device());
            run_forward(i, in[i], Tensor(), part, nullptr);
            eltsum_forward({out, part}, {1.0, 1.0}, out);
        }
        if (!op_bias) bias_add_forward(out, bias().value);
        if (neuron && !op_neuron) neuron_forward(out, out, *neuron);
    }

    void run_forward(std::size_t i, const Tensor& x, const Tensor& b, const Tensor& y,
                     const NeuronParams* neuron) {
        const ConvGeometry g = geometry(i, x, y);
        if (local_)
            local_forward(x, params_[i].value, b, y, g);
        else
            conv_forward(x, params_[i].value, b, y, g, neuron);
    }

    ConvGeometry geometry(std::size_t i, const Tensor& x, const Tensor& y) const {
        const Input& p = inputs_[i];
        const char* op = local_ ? "local" : "conv";
        const Tensor& w = params_[i].value;
        return local_ ? local_geometry(x, w, y, p.stride, p.stride, p.pad, p.pad, p.groups, op)
                      : conv_geometry(x, w, y, p.stride, p.stride, p.pad, p.pad, p.groups, op);
    }

    Param& bias() { return params_.back(); }

    bool local_, unshared_bias_ = false;
    std::vector<Input> inputs_;
    std::int64_t filters_ = 0;
    double flops_ = 0.0;
};
}  // namespace

std::unique_ptr<Layer> make_conv_layer(const LayerConfig& c) {
    return std::make_unique<ConvLayer>(c, false);
}
std::unique_ptr<Layer> make_local_layer(const LayerConfig& c) {
    return std::make_unique<ConvLayer>(c, true);
}

}  // namespace convnet
