// The net: a DAG of layers in the config's (topological) order. Forward runs the layers in
// order; backward runs them in reverse, starting at the cost layers, and sums the gradients of an
// output that feeds several layers (the first contribution overwrites, later ones accumulate);
// update applies the paper's SGD step to every parameter. Activations and gradients persist
// between steps, so a step allocates nothing once the batch size is steady.
#pragma once

#include <memory>
#include <vector>

#include "layers/layer.h"

namespace convnet {

class Net {
public:
    // Builds the layers, infers every output shape (ShapeError names the layer) and creates the
    // parameters (zero; the caller initialises them).
    // Parameters, activations and gradients live on `device`; forward copies the batch there.
    Net(const std::vector<LayerConfig>& configs, DType dtype, Device device = Device::cpu());

    int size() const { return static_cast<int>(layers_.size()); }
    Layer& layer(int i) { return *layers_.at(i); }
    const Shape& output_shape(int i) const { return shapes_.at(i); }
    DType dtype() const { return dtype_; }
    Device device() const { return device_; }
    // Indices of the data layers, in net order: the order forward() takes its batch tensors.
    const std::vector<int>& data_layers() const { return data_layers_; }

    // batch[j] is the (N, shape...) tensor of data layer j. With run_costs false the cost layers
    // are skipped (no labels needed), and backward is not allowed until the next full forward.
    void forward(const std::vector<Tensor>& batch, const StepContext& ctx, bool run_costs = true);
    void backward(const StepContext& ctx);
    void update();
    // forward + backward + update.
    void train_step(const std::vector<Tensor>& batch, const StepContext& ctx);

    const Tensor& output(int i) const { return acts_.at(i); }

private:
    void allocate(std::int64_t batch);
    Shape acts_shape(int i, std::int64_t batch) const;

    std::vector<std::unique_ptr<Layer>> layers_;
    std::vector<Shape> shapes_;
    std::vector<int> data_layers_;
    std::vector<Tensor> acts_, grads_;
    DType dtype_;
    Device device_;
    std::int64_t batch_ = -1;
    bool costs_ran_ = false;
};

}  // namespace convnet
