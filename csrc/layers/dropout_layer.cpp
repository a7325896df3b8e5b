// type=dropout (inverted, cuda-convnet2), dropout2 (classic, the paper's) and hs (the 2012 code's
// classic dropout with keep in the definition file). The mask comes from the counter-based RNG
// keyed by (seed, layer index, step), so a resumed run draws the same masks, and indexed by the
// element's position in the global batch, so data-parallel shards draw the one-process mask.
#include "layers/layer.h"
#include "ops/dropout.h"

namespace convnet {

namespace {
class DropoutLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        expect_inputs(in, 1);
        keep_ = config_.number("keep", 0.5);
        enabled_ = config_.number("enable", 1.0) != 0.0;
        CONVNET_ARG_CHECK(keep_ > 0.0 && keep_ <= 1.0, "layer '", name(), "': keep must be in "
                          "(0, 1], got ", keep_);
        return in[0];
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out,
                 const StepContext& ctx) override {
        if (!enabled_) {
            out.copy_from(in[0]);
            return;
        }
        dropout_forward(in[0], out, params(ctx, in[0]));
    }

    void backward(const std::vector<Tensor>&, const Tensor&, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext& ctx) override {
        if (!din[0].defined()) return;
        DropoutParams p = params(ctx, dout);
        if (!enabled_) p.p = 0.0, p.train = false, p.inverted = true;  // the identity
        dropout_backward(dout, din[0], p, beta[0]);
    }

private:
    // x: the layer's input or output gradient, (batch, ...), for the elements per image.
    DropoutParams params(const StepContext& ctx, const Tensor& x) const {
        DropoutParams p;
        const std::int64_t batch = x.ndim() > 0 ? x.dim(0) : 1;
        p.offset = ctx.sample_offset * std::uint64_t(batch > 0 ? x.numel() / batch : 0);
        p.p = 1.0 - keep_;
        p.seed = ctx.seed;
        p.step = ctx.step;
        p.layer = static_cast<std::uint32_t>(index());
        p.train = ctx.train;
        p.inverted = inverted_;
        return p;
    }

    // dropout scales the kept units by 1/keep in training; dropout2 and hs scale by keep at test.
    const bool inverted_ = config_.type == "dropout";
    double keep_ = 0.5;
    bool enabled_ = true;
};
}  // namespace

std::unique_ptr<Layer> make_dropout_layer(const LayerConfig& c) {
    return std::make_unique<DropoutLayer>(c);
}

}  // namespace convnet
