// Cost layers. The objective is coeff times the batch mean of the cost (the paper's
// <dL/dw>_batch is an average), so gradients are scaled by coeff / N.
//   cost.logreg: inputs (labels, probabilities of a softmax); -log p[label], top-1 and top-k.
//   cost.sum2: the sum of squares of its input.
#include <cmath>
#include <vector>

#include "layers/layer.h"
#include "ops/eltwise.h"
#include "ops/softmax.h"

namespace convnet {

namespace {
// The tensor itself on the CPU, a host copy of it on a GPU.
Tensor on_host(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }

class LogregLayer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        expect_inputs(in, 2);
        std::int64_t labels = 1;
        for (auto d : in[0]) labels *= d;
        if (labels != 1) shape_error("the first input must hold one label per sample", {1}, in[0]);
        if (in[1].size() != 1) shape_error("the second input must be a vector of class "
                                           "probabilities", {-1}, in[1]);
        coeff_ = config_.number("coeff");
        topk_ = config_.integer("topk", 1);
        CONVNET_ARG_CHECK(topk_ <= in[1][0], "layer '", name(), "': topk=", topk_, " exceeds the ",
                          in[1][0], " classes");
        return {1};
    }

    void forward(const std::vector<Tensor>& in, const Tensor& out, const StepContext&) override {
        read_labels(on_host(in[0]));
        const LogLossResult r = logreg_cost(in[1], labels_.data(), Tensor(), 1.0, topk_);
        report_ = {r.loss, r.top1_errors, r.topk_errors, in[1].dim(0)};
        // The layer's output: each sample's cost, -log p[label]; N numbers, written on the host
        // (on a GPU, from a copy of the probabilities: a few hundred kilobytes per step).
        const Tensor probs = on_host(in[1]);
        const Tensor costs = out.device().is_cpu() ? out : Tensor::empty(out.shape(), out.dtype());
        const std::int64_t k = probs.dim(1);
        for (std::int64_t n = 0; n < probs.dim(0); ++n)
            store(costs, n, -std::log(load(probs, n * k + labels_[n])));
        if (!out.device().is_cpu()) out.copy_from(costs);
    }

    void backward(const std::vector<Tensor>& in, const Tensor&, const Tensor&,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        if (din[1].defined())
            logreg_cost(in[1], labels_.data(), din[1], coeff_ / double(in[1].dim(0)), topk_,
                        beta[1]);
    }

    void fused_softmax_backward(const Tensor& x, const Tensor& probs, const Tensor& dx,
                                float beta) override {
        if (!dx.defined()) return;
        // probs is rewritten with the values the forward pass gave it.
        Tensor unscaled = Tensor::empty(dx.shape(), dx.dtype(), dx.device());
        softmax_logloss(x, labels_.data(), probs, unscaled, topk_);
        eltwise_scale(unscaled, coeff_ / double(x.dim(0)), dx, beta);
    }

    bool is_cost() const override { return true; }
    bool fuses_with_softmax() const override { return true; }
    CostReport cost_report() const override { return report_; }

private:
    static double load(const Tensor& t, std::int64_t i) {
        return t.dtype() == DType::f32 ? t.data<float>()[i] : t.data<double>()[i];
    }
    static void store(const Tensor& t, std::int64_t i, double v) {
        if (t.dtype() == DType::f32)
            t.data<float>()[i] = float(v);
        else
            t.data<double>()[i] = v;
    }

    void read_labels(const Tensor& labels) {
        labels_.resize(labels.dim(0));
        for (std::int64_t n = 0; n < labels.dim(0); ++n) {
            const double v = load(labels, n);
            CONVNET_ARG_CHECK(v == std::floor(v) && v >= 0 && v < 2147483647.0, "layer '", name(),
                              "': label ", v, " of sample ", n, " is not a class index");
            labels_[n] = static_cast<std::int32_t>(v);
        }
    }

    double coeff_ = 1.0;
    int topk_ = 1;
    std::vector<std::int32_t> labels_;
    CostReport report_;
};

class Sum2Layer : public Layer {
public:
    using Layer::Layer;

    Shape setup(const std::vector<Shape>& in, DType) override {
        expect_inputs(in, 1);
        coeff_ = config_.number("coeff");
        return {1};
    }

    void forward(const std::vector<Tensor>& in_any, const Tensor& out_any,
                 const StepContext&) override {
        // A rarely used cost: computed on the host, from a copy when the net is on a GPU.
        const std::vector<Tensor> in{on_host(in_any[0])};
        const Tensor out = out_any.device().is_cpu()
                               ? out_any : Tensor::empty(out_any.shape(), out_any.dtype());
        const std::int64_t n = in[0].dim(0), k = in[0].numel() / n;
        double total = 0.0;
        for (std::int64_t s = 0; s < n; ++s) {
            double sum = 0.0;
            for (std::int64_t j = 0; j < k; ++j) {
                const double v = in[0].dtype() == DType::f32 ? in[0].data<float>()[s * k + j]
                                                             : in[0].data<double>()[s * k + j];
                sum += v * v;
            }
            if (out.dtype() == DType::f32)
                out.data<float>()[s] = float(sum);
            else
                out.data<double>()[s] = sum;
            total += sum;
        }
        if (!out_any.device().is_cpu()) out_any.copy_from(out);
        report_ = {total, 0, 0, n};
    }

    void backward(const std::vector<Tensor>& in, const Tensor&, const Tensor&,
                  const std::vector<Tensor>& din, const std::vector<float>& beta,
                  const StepContext&) override {
        if (din[0].defined())
            eltsum_backward(in[0], {2.0 * coeff_ / double(in[0].dim(0))}, {din[0]}, beta[0]);
    }

    bool is_cost() const override { return true; }
    CostReport cost_report() const override { return report_; }

private:
    double coeff_ = 1.0;
    CostReport report_;
};
}  // namespace

std::unique_ptr<Layer> make_logreg_layer(const LayerConfig& c) {
    return std::make_unique<LogregLayer>(c);
}
std::unique_ptr<Layer> make_sum2_layer(const LayerConfig& c) {
    return std::make_unique<Sum2Layer>(c);
}

}  // namespace convnet
