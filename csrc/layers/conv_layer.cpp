// type=conv and type=local: convolution with shared filters, and with one filter bank per output
// position. Output size by cuda-convnet's rule (1 + ceil((2*padding + size - filterSize) /
// stride)) unless modulesX overrides it; non-square images work, each axis on its own.
#include <cmath>

#include "layers/layer.h"
#include "ops/conv.h"
#include "ops/local.h"

namespace convnet {

namespace {
class ConvLayer : public Layer {
public:
    ConvLayer(const LayerConfig& c, bool local) : Layer(c), local_(local) {}

    Shape setup(const std::vector<Shape>& in, DType dtype) override {
        expect_inputs(in, 1);
        CONVNET_ARG_CHECK(config_.list("channels").size() == 1, "layer '", name(), "': a ",
                          config_.type, " layer with several inputs is not supported yet");
        channels_ = expect_image(in[0]);
        groups_ = config_.integer("groups", 1);
        filters_ = config_.integer("filters") * groups_;
        size_ = config_.integer("filterSize");
        stride_ = config_.integer("stride", 1);
        pad_ = config_.integer("padding", 0);
        if (channels_ % groups_)
            throw ShapeError(detail::concat("layer '", name(), "': groups=", groups_,
                                            " must divide channels=", channels_));
        const int modules = config_.integer("modulesX", 0);
        const std::int64_t oh = modules > 0 ? modules : out_size(in[0][1]);
        const std::int64_t ow = modules > 0 ? modules : out_size(in[0][2]);
        if (!local_ && config_.number("sharedBiases", 1.0) == 0.0)
            throw ArgumentError(detail::concat("layer '", name(),
                                               "': sharedBiases=0 is not supported yet"));
        if (local_) {
            add_param("weights", {oh, ow, filters_, channels_ / groups_, size_, size_}, dtype);
            add_param("biases", {filters_, oh, ow}, dtype);
        } else {
            add_param("weights", {filters_, channels_ / groups_, size_, size_}, dtype);
            add_param("biases", {filters_}, dtype);
        }
        flops_ = double(filters_) * oh * ow * (channels_ / groups_) * size_ * size_;
        return {filters_, oh, ow};
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        const ConvGeometry g = geometry(in[0], out);
        if (local_)
            local_forward(in[0], params_[0].value, params_[1].value, out, g);
        else
            conv_forward(in[0], params_[0].value, params_[1].value, out, g);
    }

    void backward(const std::vector<Tensor>& in, const Tensor&, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        const ConvGeometry g = geometry(in[0], dout);
        auto run = local_ ? &local_backward : &conv_backward;
        if (din[0].defined()) run(in[0], params_[0].value, dout, din[0], {}, {}, g, beta[0]);
        run(in[0], params_[0].value, dout, {}, params_[0].grad, params_[1].grad, g, 0.f);
    }

    double flops_per_sample() const override { return flops_; }

private:
    std::int64_t out_size(std::int64_t size) const {
        const std::int64_t span = 2 * pad_ + size - size_;
        if (span < 0)
            throw ShapeError(detail::concat("layer '", name(), "': filterSize=", size_,
                                            " does not fit an input of ", size, " with padding ",
                                            pad_));
        return 1 + (span + stride_ - 1) / stride_;
    }

    ConvGeometry geometry(const Tensor& x, const Tensor& y) const {
        const char* op = local_ ? "local" : "conv";
        return local_ ? local_geometry(x, params_[0].value, y, stride_, stride_, pad_, pad_,
                                       groups_, op)
                      : conv_geometry(x, params_[0].value, y, stride_, stride_, pad_, pad_,
                                      groups_, op);
    }

    bool local_;
    std::int64_t channels_ = 0, filters_ = 0, size_ = 0;
    int groups_ = 1, stride_ = 1, pad_ = 0;
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
