// type=fc: y = sum_i x_i W_i^T + b, one weight matrix per input (PyTorch's layout (outputs,
// inputs)); image inputs are read in C order (channel, row, column).
#include "layers/layer.h"
#include "ops/eltwise.h"
#include "ops/fc.h"

namespace convnet {

namespace {
class FcLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType dtype) override {
        CONVNET_ARG_CHECK(!in.empty(), "layer '", name(), "': needs an input");
        outputs_ = config_.integer("outputs");
        for (std::size_t i = 0; i < in.size(); ++i) {
            std::int64_t k = 1;
            for (auto d : in[i]) k *= d;
            add_param(i == 0 ? "weights" : "weights." + std::to_string(i), {outputs_, k}, dtype);
            flops_ += double(outputs_) * k;
        }
        add_param("biases", {outputs_}, dtype);
        return {outputs_};
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        fc_forward(flat(in[0]), params_[0].value, bias().value, out);
        for (std::size_t i = 1; i < in.size(); ++i) {
            Tensor part = Tensor::empty(out.shape(), out.dtype(), out.device());
            fc_forward(flat(in[i]), params_[i].value, Tensor(), part);
            eltsum_forward({out, part}, {1.0, 1.0}, out);
        }
    }

    void backward(const std::vector<Tensor>& in, const Tensor&, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        const bool param_grads = computes_param_gradients();
        for (std::size_t i = 0; i < in.size(); ++i) {
            const Tensor dx = din[i].defined() ? din[i].reshape(flat(in[i]).shape()) : Tensor();
            if (dx.defined())
                fc_backward(flat(in[i]), params_[i].value, dout, dx, {}, {}, beta[i]);
            if (param_grads)
                fc_backward(flat(in[i]), params_[i].value, dout, {}, params_[i].grad,
                            i == 0 ? bias().grad : Tensor(), 0.f);
        }
    }

    bool backward_reads_output() const override { return false; }

    double flops_per_sample() const override { return flops_; }

private:
    static Tensor flat(const Tensor& x) { return x.reshape({x.dim(0), x.numel() / x.dim(0)}); }
    Param& bias() { return params_.back(); }

    std::int64_t outputs_ = 0;
    double flops_ = 0.0;
};
}  // namespace

std::unique_ptr<Layer> make_fc_layer(const LayerConfig& c) { return std::make_unique<FcLayer>(c); }

}  // namespace convnet
