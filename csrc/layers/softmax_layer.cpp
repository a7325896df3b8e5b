// type=softmax over each sample's outputs (an image input is flattened).
#include "layers/layer.h"
#include "ops/softmax.h"

namespace convnet {

namespace {
Tensor rows(const Tensor& t) { return t.reshape({t.dim(0), t.numel() / t.dim(0)}); }

class SoftmaxLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        expect_inputs(in, 1);
        std::int64_t k = 1;
        for (auto d : in[0]) k *= d;
        return {k};
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        softmax_forward(rows(in[0]), out);
    }

    void backward(const std::vector<Tensor>&, const Tensor& out, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        if (din[0].defined()) softmax_backward(out, dout, rows(din[0]), beta[0]);
    }

    bool is_softmax() const override { return true; }
};
}  // namespace

std::unique_ptr<Layer> make_softmax_layer(const LayerConfig& c) {
    return std::make_unique<SoftmaxLayer>(c);
}

}  // namespace convnet
