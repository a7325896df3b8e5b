// type=data: a batch matrix of the data provider; the net copies nothing into it, it just holds
// the batch tensor it is given. Its per-sample shape comes from the config (`shape`).
#include "layers/layer.h"

namespace convnet {

namespace {
class DataLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        expect_inputs(in, 0);
        Shape shape;
        for (double d : config_.list("shape")) shape.push_back(static_cast<std::int64_t>(d));
        return shape;
    }
    void forward(const std::vector<Tensor>&, const Tensor&, const StepContext&) override {}
    void backward(const std::vector<Tensor>&, const Tensor&, const Tensor&,
                  const std::vector<Tensor>&, const std::vector<float>&,
                  const StepContext&) override {}
    bool is_data() const override { return true; }
};
}  // namespace

std::unique_ptr<Layer> make_data_layer(const LayerConfig& c) {
    return std::make_unique<DataLayer>(c);
}

}  // namespace convnet
