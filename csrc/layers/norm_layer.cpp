// type=cmrnorm (across maps), rnorm and cnorm (within each map). The parser has already divided
// the user's scale by size (cmrnorm) or size^2 (rnorm, cnorm): `alpha` here is the coefficient
// of the sum, `k` is minDiv.
#include "layers/layer.h"
#include "ops/lrn.h"
#include "ops/rnorm.h"

namespace convnet {

namespace {
class NormLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        expect_inputs(in, 1);
        expect_image(in[0]);
        const int size = config_.integer("size");
        lrn_.size = rnorm_.size = size;
        lrn_.pre = rnorm_.pre = size / 2;
        lrn_.blocked = config_.number("blocked", 0.0) != 0.0;
        lrn_.alpha = rnorm_.alpha = config_.number("alpha");
        lrn_.beta = rnorm_.beta = config_.number("pow");
        lrn_.k = rnorm_.k = config_.number("k", 1.0);
        return in[0];
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        switch (kind_) {
        case Kind::across_maps: lrn_forward(in[0], out, lrn_); break;
        case Kind::within_map: rnorm_forward(in[0], out, rnorm_); break;
        case Kind::contrast: cnorm_forward(in[0], out, rnorm_); break;
        }
    }

    void backward(const std::vector<Tensor>& in, const Tensor& out, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        if (!din[0].defined()) return;
        switch (kind_) {
        case Kind::across_maps: lrn_backward(in[0], out, dout, din[0], lrn_, beta[0]); break;
        case Kind::within_map: rnorm_backward(in[0], out, dout, din[0], rnorm_, beta[0]); break;
        case Kind::contrast: cnorm_backward(in[0], out, dout, din[0], rnorm_, beta[0]); break;
        }
    }

private:
    // cmrnorm normalises across maps, rnorm within each map, cnorm within each map by the
    // squared deviations from the local mean.
    enum class Kind { across_maps, within_map, contrast };
    const Kind kind_ = kind_of<Kind>(config_, {{"cmrnorm", Kind::across_maps},
                                               {"rnorm", Kind::within_map},
                                               {"cnorm", Kind::contrast}});
    LrnParams lrn_;
    RnormParams rnorm_;
};
}  // namespace

std::unique_ptr<Layer> make_norm_layer(const LayerConfig& c) {
    return std::make_unique<NormLayer>(c);
}

}  // namespace convnet
