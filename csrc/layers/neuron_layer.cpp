// type=neuron (also what an inline neuron= becomes): an element-wise activation.
#include "layers/layer.h"
#include "ops/neuron.h"

namespace convnet {

namespace {
class NeuronLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        expect_inputs(in, 1);
        p_ = NeuronParams{neuron_type_from_name(config_.string("neuron")),
                          config_.number("neuron_a", 1.0), config_.number("neuron_b", 0.0)};
        return in[0];
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        neuron_forward(in[0], out, p_);
    }

    void backward(const std::vector<Tensor>& in, const Tensor& out, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        if (din[0].defined()) neuron_backward(in[0], out, dout, din[0], p_, beta[0]);
    }

    const NeuronParams* neuron() const override { return &p_; }

private:
    NeuronParams p_;
};
}  // namespace

std::unique_ptr<Layer> make_neuron_layer(const LayerConfig& c) {
    return std::make_unique<NeuronLayer>(c);
}

}  // namespace convnet
