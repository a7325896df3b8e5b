// type=pool: max or average pooling with cuda-convnet's sizeX, stride, start and outputsX.
#include "layers/layer.h"
#include "ops/pool.h"

namespace convnet {

namespace {
class PoolLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        expect_inputs(in, 1);
        const std::int64_t channels = expect_image(in[0]);
        const std::string& mode = config_.string("pool");
        if (mode == "avg" && config_.number("sum", 0.0) != 0.0)
            throw ArgumentError(detail::concat("layer '", name(), "': sum=1 is not supported "
                                               "yet"));
        const int size = config_.integer("sizeX"), stride = config_.integer("stride");
        const int start = config_.integer("start", 0), outputs = config_.integer("outputsX", 0);
        p_ = PoolParams{pool_mode_from_name(mode), size, size, stride, stride, start, start};
        const std::int64_t oh = pool_output_size(in[0][1], size, stride, start, outputs);
        const std::int64_t ow = pool_output_size(in[0][2], size, stride, start, outputs);
        return {channels, oh, ow};
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        run(in[0], out, nullptr);
    }

    void forward_with_neuron(const std::vector<Tensor>& in, const Tensor& out,
                             const NeuronParams& neuron, const StepContext&) override {
        run(in[0], out, &neuron);
    }

    bool runs_by_image() const override { return device().is_cpu(); }

    void begin_images(const Tensor& out) override { keep_winners(out); }

    void forward_image(const std::vector<Tensor>& in, const Tensor& out, std::int64_t n,
                       const NeuronParams* neuron) override {
        const Tensor& x = in[0];
        auto image = [n](const Tensor& t) {
            Shape shape = t.shape();
            shape[0] = 1;
            const std::size_t bytes = t.nbytes() / std::size_t(t.dim(0));
            return Tensor::borrow(static_cast<char*>(t.raw()) + n * bytes, shape, t.dtype(),
                                  t.device());
        };
        pool_forward(image(x), image(out), p_, winners_.defined() ? image(winners_) : Tensor(),
                     neuron);
    }

    // Average pooling never reads y; max pooling reads it only where no winners are kept (GPU).
    bool backward_reads_output() const override {
        return p_.mode == PoolMode::max && !device().is_cpu();
    }

    void backward(const std::vector<Tensor>& in, const Tensor& out, const Tensor& dout,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        if (din[0].defined()) pool_backward(in[0], out, dout, din[0], p_, beta[0], winners_);
    }

    void backward_with_neuron(const std::vector<Tensor>& in, const Tensor& out,
                              const Tensor& dout, const std::vector<Tensor>& din,
                              const std::vector<float>& beta, const StepContext&, std::size_t,
                              const NeuronParams& neuron) override {
        if (din[0].defined())
            pool_backward(in[0], out, dout, din[0], p_, beta[0], winners_, &neuron);
    }

private:
    void run(const Tensor& x, const Tensor& out, const NeuronParams* neuron) {
        keep_winners(out);
        pool_forward(x, out, p_, winners_, neuron);
    }

    // On the CPU, max pooling keeps each window's winner for backward (ops/pool.h): one buffer
    // per batch shape, reused from step to step.
    void keep_winners(const Tensor& out) {
        if (p_.mode == PoolMode::max && out.device().is_cpu() &&
            (!winners_.defined() || winners_.numel() != out.numel()))
            winners_ = Tensor::empty(out.shape(), DType::f32);
    }

    PoolParams p_;
    Tensor winners_;  // int32 per output, in a 4-byte tensor; CPU max pooling only
};
}  // namespace

std::unique_ptr<Layer> make_pool_layer(const LayerConfig& c) {
    return std::make_unique<PoolLayer>(c);
}

}  // namespace convnet
