// Net: construction with shape inference, forward, backward with fan-out accumulation, update.
#include "graph/net.h"

#include <algorithm>
#include <chrono>

#include "core/cuda_runtime.h"
#include "ops/eltwise.h"
#include "ops/sgd.h"

namespace convnet {

namespace {
// Kernels launch on the calling thread's current device: make it the net's before any work, so
// a net on cuda:1 never runs on cuda:0 (and a thread that has never touched CUDA works too).
void use_device(Device device) {
#ifdef CONVNET_WITH_CUDA
    if (device.is_cuda()) cuda::set_device(device.index);
#else
    (void)device;
#endif
}

// How a copy edge's tensors go from a tensor on `from` to one on `to` (Net::CopyEdge::path).
const char* copy_path(Device from, Device to) {
    if (from.is_cpu() && to.is_cpu()) return "cpu";
#ifdef CONVNET_WITH_CUDA
    if (from.is_cuda() && to.is_cuda())
        return cuda::copy_path_name(cuda::copy_path(from.index, to.index));
#endif
    return "host";
}

// Copies a copy edge's tensor (same shape and dtype by construction); returns the path it took.
const char* copy_edge(const Tensor& dst, const Tensor& src) {
#ifdef CONVNET_WITH_CUDA
    if (dst.device().is_cuda() && src.device().is_cuda()) {
        CONVNET_CHECK(dst.nbytes() == src.nbytes(), "net: copy edge of ", src.nbytes(),
                      " bytes into ", dst.nbytes());
        return cuda::copy_path_name(cuda::copy_between_devices(
            dst.raw(), dst.device().index, src.raw(), src.device().index, dst.nbytes()));
    }
#endif
    dst.copy_from(src);
    return copy_path(src.device(), dst.device());
}

// The paper's columns exchange data GPU to GPU directly: open every pair of the net's GPUs that
// can reach each other (the others' copy edges go through host memory).
void enable_peer_access(const std::vector<Device>& devices) {
#ifdef CONVNET_WITH_CUDA
    std::vector<int> gpus;
    for (const Device& d : devices)
        if (d.is_cuda() && std::find(gpus.begin(), gpus.end(), d.index) == gpus.end())
            gpus.push_back(d.index);
    if (gpus.size() > 1) cuda::enable_peer_access(gpus);
#else
    (void)devices;
#endif
}

// Runs f; a plain convnet::Error from inside (out of memory, a CUDA failure) gets the layer's
// name in front. ShapeError and ArgumentError already name it and pass through unchanged.
template <typename F>
auto with_layer_name(const std::string& name, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const ShapeError&) {
        throw;
    } catch (const ArgumentError&) {
        throw;
    } catch (const Error& e) {
        const std::string what = e.what();
        if (what.find("layer '" + name + "'") != std::string::npos) throw;
        throw Error(detail::concat("layer '", name, "': ", what));
    }
}
}  // namespace

Net::Net(const std::vector<LayerConfig>& configs, DType dtype, const std::vector<Device>& devices)
    : dtype_(dtype), devices_(devices) {
    CONVNET_ARG_CHECK(!configs.empty(), "net: no layers");
    CONVNET_ARG_CHECK(!devices.empty(), "net: no devices");
    for (const Device& d : devices)
        CONVNET_ARG_CHECK(d.is_cpu() || dtype == DType::f32, "net: the GPU path takes float32, "
                          "not ", dtype_name(dtype));
    enable_peer_access(devices);
    for (std::size_t i = 0; i < configs.size(); ++i) {
        const LayerConfig& c = configs[i];
        std::vector<Shape> in;
        for (int j : c.inputs) {
            CONVNET_ARG_CHECK(j >= 0 && j < static_cast<int>(i), "net: layer '", c.name,
                              "' reads layer #", j, ", which does not come before it");
            in.push_back(shapes_[j]);
        }
        CONVNET_ARG_CHECK(c.device >= 0 && c.device < static_cast<int>(devices.size()),
                          "layer '", c.name, "': gpu=", c.device, " but the net was given ",
                          devices.size(), " device(s)");
        const Device device = devices[c.device];
        auto layer = make_layer(c);
        layer->set_index(static_cast<int>(i));
        layer->set_device(device);
        use_device(device);
        shapes_.push_back(with_layer_name(c.name, [&] { return layer->setup(in, dtype); }));
        if (layer->is_data()) data_layers_.push_back(static_cast<int>(i));
        layers_.push_back(std::move(layer));
        layer_devices_.push_back(device);
        std::vector<Edge> edges(c.inputs.size());
        for (std::size_t k = 0; k < c.inputs.size(); ++k) {
            edges[k].copy = configs[c.inputs[k]].device != c.device;
            edges[k].path = copy_path(devices[configs[c.inputs[k]].device], device);
        }
        edges_.push_back(std::move(edges));
    }
    acts_.resize(layers_.size());
    grads_.resize(layers_.size());
    backward_passes_.assign(layers_.size(), 0);
    std::vector<int> readers(configs.size(), 0);
    for (const LayerConfig& c : configs)
        for (int j : c.inputs) ++readers[j];
    fused_.assign(configs.size(), -1);
    for (std::size_t i = 0; i < configs.size(); ++i) {
        const LayerConfig& c = configs[i];
        if (!layers_[i]->fuses_with_softmax() || c.inputs.size() != 2 || edges_[i][1].copy)
            continue;
        const int s = c.inputs[1];
        if (layers_[s]->is_softmax() && readers[s] == 1 && !edges_[s][0].copy) fused_[i] = s;
    }
    fused_neuron_.assign(configs.size(), -1);
    fused_producer_.assign(configs.size(), -1);
    for (std::size_t i = 0; i < configs.size(); ++i) {
        const NeuronParams* neuron = layers_[i]->neuron();
        if (!neuron || neuron_gradient_reads_input(neuron->type) || edges_[i][0].copy) continue;
        const int p = configs[i].inputs[0];
        const Layer& producer = *layers_[p];
        if (readers[p] != 1 || producer.is_data() || producer.is_cost() ||
            producer.is_softmax() || producer.neuron() || producer.backward_reads_output() ||
            fused_producer_[p] >= 0)
            continue;
        fused_neuron_[p] = int(i);
        fused_producer_[i] = p;
    }
    fused_reader_.assign(configs.size(), -1);
    for (std::size_t c = 0; c < configs.size(); ++c) {
        const auto& inputs = configs[c].inputs;
        if (layers_[c]->is_cost() || layers_[c]->neuron()) continue;
        for (std::size_t k = 0; k < inputs.size(); ++k) {
            const int n = inputs[k];
            const NeuronParams* neuron = layers_[n]->neuron();
            if (!neuron || neuron_gradient_reads_input(neuron->type) || readers[n] != 1 ||
                edges_[c][k].copy || edges_[n][0].copy)
                continue;
            const int p = configs[n].inputs[0];
            if (readers[p] == 1 && !layers_[p]->is_data()) {
                fused_reader_[n] = int(c);
                break;  // one neuron per reader (Layer::backward_with_neuron)
            }
        }
    }
    // A layer q reading only what p writes in a fused pass (p's output, or its fused neuron's),
    // and nothing else reading it, on one CPU: q may run inside p's forward, image by image.
    pipelined_.assign(configs.size(), -1);
    for (std::size_t q = 0; q < configs.size(); ++q) {
        const auto& inputs = configs[q].inputs;
        if (inputs.size() != 1 || !layers_[q]->runs_by_image() || edges_[q][0].copy) continue;
        int p = inputs[0];
        if (fused_producer_[p] >= 0) p = fused_producer_[p];
        const int written = fused_neuron_[p] >= 0 ? fused_neuron_[p] : p;
        if (written != inputs[0] || readers[written] != 1 || !layer_devices_[p].is_cpu() ||
            layers_[p]->is_data())
            continue;
        pipelined_[p] = int(q);
    }
}

const Tensor& Net::fused_output(int i) const {
    return fused_neuron_[i] >= 0 ? acts_[fused_neuron_[i]] : acts_[i];
}

const NeuronParams* Net::fused_neuron_params(int i) const {
    return fused_neuron_[i] >= 0 ? layers_[fused_neuron_[i]]->neuron() : nullptr;
}

const Tensor& Net::output(int i) const {
    const Tensor& out = acts_.at(i);
    if (last_forward_fused_ && fused_neuron_[i] >= 0)
        throw Error(detail::concat("layer '", layers_[i]->name(), "': the last forward pass "
                                   "wrote only the output of '", layers_[fused_neuron_[i]]->name(),
                                   "' (the neuron fused into it); a forward pass without the "
                                   "costs (Net.features) keeps every layer's output"));
    return out;
}

void Net::set_profiling(bool on) {
    profiling_ = on;
    times_.assign(on ? layers_.size() : 0, LayerTime{});
}

template <typename F>
void Net::timed(int i, double LayerTime::*slot, F&& f) {
    if (!profiling_) {
        f();
        return;
    }
    auto finish = [&] {
#ifdef CONVNET_WITH_CUDA
        if (layer_devices_[i].is_cuda()) cuda::synchronize(layer_devices_[i].index);
#endif
    };
    finish();
    const auto start = std::chrono::steady_clock::now();
    f();
    finish();
    times_[i].*slot += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Net::allocate(std::int64_t batch) {
    if (batch == batch_) return;
    for (int i = 0; i < size(); ++i) {
        // Out of memory names the layer whose activations did not fit (and the bytes asked for).
        with_layer_name(layers_[i]->name(), [&] {
            const Device dev = layer_devices_[i];
            acts_[i] = Tensor::empty(acts_shape(i, batch), dtype_, dev);
            grads_[i] = layers_[i]->is_data() ? Tensor()
                                              : Tensor::empty(acts_shape(i, batch), dtype_, dev);
            const auto& inputs = layers_[i]->config().inputs;
            for (std::size_t k = 0; k < inputs.size(); ++k) {
                Edge& e = edges_[i][k];
                if (!e.copy) continue;
                const int j = inputs[k];
                e.act = Tensor::empty(acts_shape(j, batch), dtype_, dev);
                const bool wants_grad = !layers_[j]->is_data();
                e.grad = wants_grad ? Tensor::empty(acts_shape(j, batch), dtype_, dev) : Tensor();
                e.landing = wants_grad ? Tensor::empty(acts_shape(j, batch), dtype_,
                                                       layer_devices_[j])
                                       : Tensor();
            }
            return 0;
        });
    }
    batch_ = batch;
}

void Net::forward_inputs(int i, std::vector<Tensor>& in) {
    const auto& inputs = layers_[i]->config().inputs;
    for (std::size_t k = 0; k < inputs.size(); ++k) {
        Edge& e = edges_[i][k];
        if (e.copy) e.path = copy_edge(e.act, acts_[inputs[k]]);
        in.push_back(e.copy ? e.act : acts_[inputs[k]]);
    }
}

void Net::forward(const std::vector<Tensor>& batch, const StepContext& ctx, bool run_costs) {
    CONVNET_ARG_CHECK(batch.size() == data_layers_.size(), "net.forward: the net has ",
                      data_layers_.size(), " data layers but ", batch.size(),
                      " batch tensors were given");
    const std::int64_t n = batch.empty() ? 0 : batch[0].dim(0);
    CONVNET_ARG_CHECK(n >= 1, "net.forward: empty batch");
    for (std::size_t j = 0; j < batch.size(); ++j) {
        const int i = data_layers_[j];
        const Shape want = acts_shape(i, n);
        const Shape got = batch[j].shape();
        std::int64_t got_n = 1, want_n = 1;
        for (auto d : got) got_n *= d;
        for (auto d : want) want_n *= d;
        if (got_n != want_n || got.empty() || got[0] != n)
            throw ShapeError(detail::concat("data layer '", layers_[i]->name(),
                                            "': expected a batch of shape ", shape_str(want),
                                            ", found ", shape_str(got)));
        CONVNET_ARG_CHECK(batch[j].dtype() == dtype_, "data layer '", layers_[i]->name(),
                          "': expected ", dtype_name(dtype_), " data, found ",
                          dtype_name(batch[j].dtype()));
    }
    allocate(n);
    // Copied, so that backward never reads memory the caller has since released.
    for (std::size_t j = 0; j < batch.size(); ++j) {
        use_device(layer_devices_[data_layers_[j]]);
        acts_[data_layers_[j]].copy_from(batch[j]);
    }
    const bool fuse = run_costs && fuse_neurons_;
    std::vector<bool> done(layers_.size(), false);  // run inside their producer's forward
    for (int i = 0; i < size(); ++i) {
        Layer& layer = *layers_[i];
        if (layer.is_data() || (layer.is_cost() && !run_costs)) continue;
        if (fuse && fused_producer_[i] >= 0) continue;  // written by its producer
        if (done[i]) continue;
        use_device(layer_devices_[i]);
        std::vector<Tensor> in;
        const NeuronParams* neuron = fuse ? fused_neuron_params(i) : nullptr;
        const int q = fuse ? pipelined_[i] : -1;
        timed(i, &LayerTime::forward, [&] {
            forward_inputs(i, in);
            if (q >= 0) {
                Layer& reader = *layers_[q];
                const std::vector<Tensor> q_in{fused_output(i)};
                const Tensor& q_out = fused_output(q);
                const NeuronParams* q_neuron = fused_neuron_params(q);
                reader.begin_images(q_out);
                if (layer.forward_with_image_hook(
                        in, fused_output(i), fused_neuron_params(i),
                        [&](std::int64_t n) { reader.forward_image(q_in, q_out, n, q_neuron); },
                        ctx)) {
                    done[q] = true;
                    return;
                }
            }
            if (neuron)
                layer.forward_with_neuron(in, fused_output(i), *neuron, ctx);
            else
                layer.forward(in, acts_[i], ctx);
        });
    }
    costs_ran_ = run_costs;
    last_forward_fused_ = fuse;
}

Shape Net::acts_shape(int i, std::int64_t batch) const {
    Shape shape{batch};
    shape.insert(shape.end(), shapes_[i].begin(), shapes_[i].end());
    return shape;
}

std::vector<bool> Net::gradients_needed() const {
    std::vector<bool> needed(layers_.size(), false);
    for (int i = 0; i < size(); ++i) {   // inputs come before their readers
        const Layer& layer = *layers_[i];
        needed[i] = layer.trains();
        for (int j : layer.config().inputs) needed[i] = needed[i] || needed[j];
    }
    return needed;
}

void Net::backward(const StepContext& ctx, const std::function<void(int)>& params_ready) {
    CONVNET_ARG_CHECK(costs_ran_, "net.backward: the last forward pass skipped the cost layers");
    std::vector<bool> written(layers_.size(), false);
    const std::vector<bool> needed = gradients_needed();
    for (int i = size() - 1; i >= 0; --i) {
        Layer& layer = *layers_[i];
        if (layer.is_data() || (!layer.is_cost() && !written[i]) || !needed[i]) continue;
        use_device(layer_devices_[i]);
        ++backward_passes_[i];
        if (fused_[i] >= 0) {
            const int s = fused_[i], x = layers_[s]->config().inputs[0];
            if (grads_[x].defined() && needed[x]) {
                timed(i, &LayerTime::backward, [&] {
                    layer.fused_softmax_backward(acts_[x], acts_[s], grads_[x],
                                                 written[x] ? 1.f : 0.f);
                });
                written[x] = true;
            }
            continue;  // the softmax layer is left unwritten, so backward skips it
        }
        const auto& inputs = layer.config().inputs;
        std::vector<Tensor> in, din;
        std::vector<float> beta;
        std::size_t neuron_input = inputs.size();  // the input whose neuron this layer applies
        // A fused neuron's input was not kept: its gradient reads only its output.
        const bool input_dropped = last_forward_fused_ && fused_producer_[i] >= 0;
        for (std::size_t k = 0; k < inputs.size(); ++k) {
            int j = inputs[k];
            const Edge& e = edges_[i][k];
            in.push_back(e.copy ? e.act : acts_[input_dropped ? i : j]);
            if (fuse_neurons_ && fused_reader_[j] == i) {
                neuron_input = k;
                j = layers_[j]->config().inputs[0];  // the gradient goes past the neuron
            }
            // A copy edge's gradient is written whole on this device and added over there.
            // Undefined for data layers, and where nothing below is trained.
            const bool wanted = grads_[j].defined() && needed[j];
            din.push_back(!wanted ? Tensor() : e.copy ? e.grad : grads_[j]);
            beta.push_back(!e.copy && written[j] ? 1.f : 0.f);
            if (!e.copy && wanted) written[j] = true;
        }
        timed(i, &LayerTime::backward, [&] {
            const Tensor dout = layer.is_cost() ? Tensor() : grads_[i];
            if (neuron_input < inputs.size())
                layer.backward_with_neuron(in, acts_[i], dout, din, beta, ctx, neuron_input,
                                           *layers_[inputs[neuron_input]]->neuron());
            else
                layer.backward(in, acts_[i], dout, din, beta, ctx);
        });
        for (std::size_t k = 0; k < inputs.size(); ++k) {
            const int j = inputs[k];
            Edge& e = edges_[i][k];
            if (!e.copy || !din[k].defined()) continue;
            use_device(layer_devices_[j]);
            if (written[j]) {
                e.path = copy_edge(e.landing, e.grad);
                eltsum_forward({grads_[j], e.landing}, {1.0, 1.0}, grads_[j]);
            } else {
                e.path = copy_edge(grads_[j], e.grad);
                written[j] = true;
            }
            use_device(layer_devices_[i]);
        }
        if (params_ready && layer.trains()) params_ready(i);
    }
}

std::vector<Net::CopyEdge> Net::copy_edges() const {
    std::vector<CopyEdge> out;
    for (int i = 0; i < size(); ++i) {
        const auto& inputs = layers_[i]->config().inputs;
        for (std::size_t k = 0; k < inputs.size(); ++k)
            if (edges_[i][k].copy) out.push_back({inputs[k], i, edges_[i][k].path});
    }
    return out;
}

void Net::update() {
    for (std::size_t i = 0; i < layers_.size(); ++i) {
        if (!layers_[i]->trains()) continue;
        use_device(layer_devices_[i]);
        timed(int(i), &LayerTime::update, [&] {
            for (Param& p : layers_[i]->params())
                sgd_update(p.value, p.grad, p.velocity, SgdParams{p.eps, p.mom, p.wc});
        });
    }
}

void Net::train_step(const std::vector<Tensor>& batch, const StepContext& ctx) {
    forward(batch, ctx, true);
    backward(ctx);
    update();
}

}  // namespace convnet
