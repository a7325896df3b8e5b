// type=eltsum, eltmax (equally shaped inputs) and concat (each sample's features joined).
#include "layers/layer.h"
#include "ops/concat.h"
#include "ops/eltwise.h"

namespace convnet {

namespace {
Tensor rows(const Tensor& t) { return t.reshape({t.dim(0), t.numel() / t.dim(0)}); }

class CombineLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        CONVNET_ARG_CHECK(!in.empty(), "layer '", name(), "': needs an input");
        if (kind_ == Kind::concat) {
            std::int64_t total = 0;
            for (const Shape& s : in) {
                std::int64_t k = 1;
                for (auto d : s) k *= d;
                total += k;
            }
            return {total};
        }
        for (std::size_t i = 1; i < in.size(); ++i)
            if (in[i] != in[0]) shape_error("inputs must have equal shapes", in[0], in[i]);
        if (kind_ == Kind::eltsum) {
            coeffs_ = config_.has("coeffs") ? config_.list("coeffs")
                                            : std::vector<double>(in.size(), 1.0);
            CONVNET_ARG_CHECK(coeffs_.size() == in.size(), "layer '", name(), "': ", in.size(),
                              " inputs need ", in.size(), " coeffs, got ", coeffs_.size());
        }
        return in[0];
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        switch (kind_) {
        case Kind::eltsum: eltsum_forward(in, coeffs_, out); break;
        case Kind::eltmax: eltmax_forward(in, out); break;
        case Kind::concat: concat_forward(flat(in), out); break;
        }
    }

    void backward(const std::vector<Tensor>& in, const Tensor& out, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        // The ops take one beta for all gradients: run them input by input.
        for (std::size_t i = 0; i < in.size(); ++i) {
            if (!din[i].defined()) continue;
            if (kind_ == Kind::eltsum) {
                eltsum_backward(dout, {coeffs_[i]}, {din[i]}, beta[i]);
            } else if (kind_ == Kind::eltmax) {
                eltmax_backward({in[i]}, out, dout, {din[i]}, beta[i]);
            } else {
                // Every part's slot is needed to find input i's slice; other parts get scratch.
                std::vector<Tensor> parts;
                for (std::size_t j = 0; j < in.size(); ++j)
                    parts.push_back(j == i ? rows(din[i])
                                           : Tensor::empty(rows(in[j]).shape(), dout.dtype(),
                                                           dout.device()));
                concat_backward(dout, parts, beta[i]);
            }
        }
    }

private:
    enum class Kind { eltsum, eltmax, concat };
    const Kind kind_ = kind_of<Kind>(config_, {{"eltsum", Kind::eltsum},
                                               {"eltmax", Kind::eltmax},
                                               {"concat", Kind::concat}});

    static std::vector<Tensor> flat(const std::vector<Tensor>& ts) {
        std::vector<Tensor> out;
        for (const Tensor& t : ts) out.push_back(rows(t));
        return out;
    }
    std::vector<double> coeffs_;
};
}  // namespace

std::unique_ptr<Layer> make_combine_layer(const LayerConfig& c) {
    return std::make_unique<CombineLayer>(c);
}

}  // namespace convnet
