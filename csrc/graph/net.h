// The net: a DAG of layers in the config's (topological) order. Forward runs the layers in
// order; backward runs them in reverse, starting at the cost layers, and sums the gradients of an
// output that feeds several layers (the first contribution overwrites, later ones accumulate);
// update applies the paper's SGD step to every parameter. Activations and gradients persist
// between steps, so a step allocates nothing once the batch size is steady.
// Placement: each layer runs on the physical device its logical device (cfg gpu=) maps to. An
// edge between layers on different logical devices is a copy edge: forward copies the activation
// into a buffer on the consumer's device (peer to peer between GPUs), backward copies the
// gradient back and adds it on the producer's device. Logical devices that map to one physical
// device (all on the CPU, say) still copy, so the CPU exercises the same code as two GPUs.
// Neuron fusion: a neuron layer whose gradient needs only its output (relu, logistic, ...) and
// whose input is the only reader of a layer that does not read its own output in backward (conv,
// fc, pooling) is applied by that layer as it writes: in a forward pass that runs the costs (a
// training or scoring step), the producer writes the neuron's output, the neuron layer is
// skipped, and the producer's own output is not kept (output() refuses it until a forward pass
// without costs). In backward, the same kind of neuron is fused into the layer that reads it, where
// that is its only reader and the neuron is its input's only reader: the reader writes the
// gradient of the neuron's input directly (conv and pool per image or plane, in cache), and the
// neuron layer's backward is skipped. Either way the neuron's gradient reads its output only.
// Per-image pipelining, in the same passes: where a pooling layer is the only reader of a CPU
// convolution (or of the neuron fused into it), the convolution hands each image to the pooling
// as soon as it is written, so that the pooling reads it from cache, not memory; the
// convolution's output is still kept whole for backward.
// Between GPUs the copies run peer to peer where the devices can reach each other (the net enables
// peer access between its GPUs) and through host memory where not, without blocking the host.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "layers/layer.h"

namespace convnet {

class Net {
public:
    // Builds the layers, infers every output shape (ShapeError names the layer) and creates the
    // parameters (zero; the caller initialises them).
    // devices[k] is the physical device of logical device k (cfg gpu=k); forward copies the
    // batch to the data layers' devices.
    Net(const std::vector<LayerConfig>& configs, DType dtype,
        const std::vector<Device>& devices = {Device::cpu()});

    int size() const { return static_cast<int>(layers_.size()); }
    Layer& layer(int i) { return *layers_.at(i); }
    const Shape& output_shape(int i) const { return shapes_.at(i); }
    DType dtype() const { return dtype_; }
    Device device() const { return devices_.front(); }
    const std::vector<Device>& devices() const { return devices_; }
    Device layer_device(int i) const { return layer_devices_.at(i); }
    // Indices of the data layers, in net order: the order forward() takes its batch tensors.
    const std::vector<int>& data_layers() const { return data_layers_; }

    // batch[j] is the (N, shape...) tensor of data layer j. With run_costs false the cost layers
    // are skipped (no labels needed), and backward is not allowed until the next full forward.
    void forward(const std::vector<Tensor>& batch, const StepContext& ctx, bool run_costs = true);
    // params_ready(i), when given, is called as soon as layer i's parameter gradients are final
    // (right after its backward, in backward order): data parallelism starts summing them over
    // processes while backward goes on below.
    void backward(const StepContext& ctx, const std::function<void(int)>& params_ready = {});
    void update();
    // forward + backward + update.
    void train_step(const std::vector<Tensor>& batch, const StepContext& ctx);

    // Transfer learning: freezes layer i's parameters (Layer::set_frozen). Backward then does no
    // work that only frozen layers would use: no parameter gradients for them, no input
    // gradient for a layer below which nothing is trained, and no backward at all for a layer
    // that has neither to compute.
    void set_frozen(int i, bool frozen) { layers_.at(i)->set_frozen(frozen); }
    // How many backward passes ran layer i's backward (tests count the work freezing saves).
    std::int64_t backward_passes(int i) const { return backward_passes_.at(i); }

    // Layer i's output of the last forward pass; throws for a producer whose neuron was fused.
    const Tensor& output(int i) const;
    // Neuron fusion on (the default) or off; results are identical either way.
    void set_neuron_fusion(bool on) { fuse_neurons_ = on; }
    // The neuron layer fused into layer i, or -1.
    int fused_neuron(int i) const { return fused_neuron_.at(i); }
    // The layer whose backward applies neuron layer n's gradient, or -1.
    int fused_reader(int n) const { return fused_reader_.at(n); }
    // The layer that takes layer p's output image by image as p writes it, or -1.
    int pipelined_reader(int p) const { return pipelined_.at(p); }

    // The copy edges: producer, consumer, and how the last copy went ("cpu": both on the CPU,
    // "device": within one GPU, "peer": GPU to GPU directly, "host": through host memory; before
    // the first step, how it will go).
    struct CopyEdge {
        int producer, consumer;
        const char* path;
    };
    std::vector<CopyEdge> copy_edges() const;

    // Per-layer wall time, summed over the passes since profiling was turned on: forward,
    // backward and update seconds of each layer. While on, each layer's work is followed by a
    // device synchronisation so that its time is its own (GPU steps run slower profiled).
    struct LayerTime {
        double forward = 0.0, backward = 0.0, update = 0.0;
    };
    void set_profiling(bool on);
    const std::vector<LayerTime>& layer_times() const { return times_; }

private:
    void allocate(std::int64_t batch);
    // needed[i]: whether the gradient of layer i's output is wanted, i.e. a layer with trainable
    // parameters is i or lies below it.
    std::vector<bool> gradients_needed() const;
    Shape acts_shape(int i, std::int64_t batch) const;

    std::vector<std::unique_ptr<Layer>> layers_;
    std::vector<Shape> shapes_;
    std::vector<int> data_layers_;
    // The tensors layer i reads for its k-th input: acts_ of the producer, or for a copy edge a
    // buffer on i's device; grads likewise (landing_ receives a copy edge's gradient back on
    // the producer's device before it is added there).
    struct Edge {
        bool copy = false;
        const char* path = "cpu";
        Tensor act, grad, landing;
    };
    void forward_inputs(int i, std::vector<Tensor>& in);

    std::vector<Tensor> acts_, grads_;
    std::vector<std::vector<Edge>> edges_;
    // fused_[c] = index of the softmax whose only reader is cost layer c (one that
    // fuses_with_softmax(): cost.logreg; same device, input not copied), or -1: backward then
    // goes from the cost to the softmax's input in one step.
    std::vector<int> fused_;
    // fused_neuron_[p] = the neuron layer fused into layer p, fused_producer_[n] = p, else -1.
    std::vector<int> fused_neuron_, fused_producer_;
    // fused_reader_[n] = the layer whose backward applies neuron layer n's gradient, else -1.
    std::vector<int> fused_reader_;
    // pipelined_[p] = the layer run image by image inside layer p's forward, else -1.
    std::vector<int> pipelined_;
    // The tensor a layer's forward writes in a fused pass (its neuron's output where one is
    // fused into it), and that neuron's parameters (null where none).
    const Tensor& fused_output(int i) const;
    const NeuronParams* fused_neuron_params(int i) const;
    bool fuse_neurons_ = true, last_forward_fused_ = false;
    DType dtype_;
    std::vector<Device> devices_, layer_devices_;
    std::int64_t batch_ = -1;
    bool costs_ran_ = false;
    bool profiling_ = false;
    std::vector<LayerTime> times_;
    std::vector<std::int64_t> backward_passes_;
    // Runs f, adding its wall time to `slot` of layer i's LayerTime when profiling.
    template <typename F>
    void timed(int i, double LayerTime::*slot, F&& f);
};

}  // namespace convnet
