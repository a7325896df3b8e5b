// convnet._core.Net, the C++ graph that convnet/net.py drives: built from the dicts net.py makes
// of its LayerSpecs; batches come in as numpy arrays, parameters go out as copies or CPU views.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "api.h"
#include "bindings/convert.h"
#include "bindings/families.h"
#include "graph/replicas.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {

// A LayerConfig from the dict convnet/net.py builds from a LayerSpec:
// {name, type, inputs: [int], numbers: {key: [float]}, strings: {key: str}}.
LayerConfig layer_config(const py::dict& d) {
    LayerConfig c;
    c.name = d["name"].cast<std::string>();
    c.type = d["type"].cast<std::string>();
    c.inputs = d["inputs"].cast<std::vector<int>>();
    c.numbers = d["numbers"].cast<std::map<std::string, std::vector<double>>>();
    c.strings = d["strings"].cast<std::map<std::string, std::string>>();
    if (d.contains("device")) c.device = d["device"].cast<int>();
    return c;
}

// A parameter the CPU-only views may look at (a view of device memory would be a dangling host
// pointer).
const Param& cpu_param(Net& n, const char* what, int layer, int param) {
    CONVNET_ARG_CHECK(n.device().is_cpu(), "Net.", what,
                      ": a view needs a CPU net; use param_get on ", n.device().str());
    return n.layer(layer).params().at(param);
}

}  // namespace

void bind_net(py::module_& m) {
    m.def("layer_types", &registered_layer_types);
    m.def("sum_replica_gradients", [](const std::vector<Net*>& graphs,
                                      const std::vector<double>& shares) {
        py::gil_scoped_release release;
        return sum_replica_gradients(graphs, shares);
    }, py::arg("graphs"), py::arg("shares"));
    py::class_<Net>(m, "Net")
        .def(py::init([](const std::vector<py::dict>& layers, const std::string& dtype,
                         const std::vector<std::string>& devices) {
                 std::vector<LayerConfig> configs;
                 for (const py::dict& d : layers) configs.push_back(layer_config(d));
                 CONVNET_ARG_CHECK(dtype == "float32" || dtype == "float64",
                                   "Net: dtype must be 'float32' or 'float64'");
                 std::vector<Device> physical;
                 for (const std::string& d : devices) physical.push_back(Device::parse(d));
                 return std::make_unique<Net>(configs,
                                              dtype == "float32" ? DType::f32 : DType::f64,
                                              physical);
             }),
             py::arg("layers"), py::arg("dtype") = "float32",
             py::arg("devices") = std::vector<std::string>{"cpu"})
        .def_property_readonly("device", [](const Net& n) { return n.device().str(); })
        .def_property_readonly("devices", [](const Net& n) {
            std::vector<std::string> out;
            for (const Device& d : n.devices()) out.push_back(d.str());
            return out;
        })
        .def("layer_device", [](const Net& n, int i) { return n.layer_device(i).str(); },
             py::arg("layer"))
        .def("copy_edges", [](const Net& n) {
            std::vector<std::tuple<int, int, std::string>> out;
            for (const Net::CopyEdge& e : n.copy_edges())
                out.emplace_back(e.producer, e.consumer, e.path);
            return out;
        })
        // Parameters by (layer, param, kind): kind 0 value, 1 gradient, 2 velocity. get returns a
        // host copy and set copies in, on any device; param_value & co. are CPU-only views.
        .def("param_shape", [](Net& n, int i, int j) {
            return n.layer(i).params().at(j).value.shape();
        }, py::arg("layer"), py::arg("param"))
        .def("param_get", [](Net& n, int i, int j, int kind) {
            const Param& p = n.layer(i).params().at(j);
            const Tensor& t = kind == 0 ? p.value : kind == 1 ? p.grad : p.velocity;
            return tensor_to_numpy(t.to(Device::cpu()));
        }, py::arg("layer"), py::arg("param"), py::arg("kind"))
        // The live tensor itself, on the net's device (NCCL sums gradients in place).
        .def("param_tensor", [](Net& n, int i, int j, int kind) {
            const Param& p = n.layer(i).params().at(j);
            return kind == 0 ? p.value : kind == 1 ? p.grad : p.velocity;
        }, py::arg("layer"), py::arg("param"), py::arg("kind"))
        .def("param_set", [](Net& n, int i, int j, int kind, py::array value) {
            const Param& p = n.layer(i).params().at(j);
            const Tensor& t = kind == 0 ? p.value : kind == 1 ? p.grad : p.velocity;
            Tensor src = borrow(value, "Net.param_set", "value");
            CONVNET_ARG_CHECK(src.shape() == t.shape() && src.dtype() == t.dtype(),
                              "Net.param_set: ", p.name, " is ", dtype_name(t.dtype()),
                              shape_str(t.shape()), ", got ", dtype_name(src.dtype()),
                              shape_str(src.shape()));
            t.copy_from(src);
        }, py::arg("layer"), py::arg("param"), py::arg("kind"), py::arg("value"))
        .def_property_readonly("size", &Net::size)
        .def_property_readonly("data_layers", &Net::data_layers)
        .def("output_shape", [](const Net& n, int i) { return n.output_shape(i); },
             py::arg("layer"))
        .def("flops_per_sample", [](Net& n, int i) { return n.layer(i).flops_per_sample(); },
             py::arg("layer"))
        .def("param_count", [](Net& n, int i) { return n.layer(i).params().size(); },
             py::arg("layer"))
        .def("param_name", [](Net& n, int i, int j) { return n.layer(i).params().at(j).name; },
             py::arg("layer"), py::arg("param"))
        .def("param_value", [](Net& n, int i, int j) {
            return tensor_to_numpy(cpu_param(n, "param_value", i, j).value);
        }, py::arg("layer"), py::arg("param"))
        .def("param_grad", [](Net& n, int i, int j) {
            return tensor_to_numpy(cpu_param(n, "param_grad", i, j).grad);
        }, py::arg("layer"), py::arg("param"))
        .def("param_velocity", [](Net& n, int i, int j) {
            return tensor_to_numpy(cpu_param(n, "param_velocity", i, j).velocity);
        }, py::arg("layer"), py::arg("param"))
        .def("set_hyper", [](Net& n, int i, int j, double eps, double mom, double wc) {
            Param& p = n.layer(i).params().at(j);
            p.eps = eps, p.mom = mom, p.wc = wc;
        }, py::arg("layer"), py::arg("param"), py::arg("eps"), py::arg("mom"), py::arg("wc"))
        .def("forward", [](Net& n, const std::vector<py::array>& batch, bool train,
                           std::uint64_t seed, std::uint64_t step, bool run_costs,
                           std::uint64_t sample_offset) {
            auto tensors = borrow_list(batch, "Net.forward", "batch");
            py::gil_scoped_release release;
            n.forward(tensors, StepContext{train, seed, step, sample_offset}, run_costs);
        }, py::arg("batch"), py::arg("train"), py::arg("seed"), py::arg("step"),
           py::arg("run_costs"), py::arg("sample_offset") = 0)
        .def("backward", [](Net& n, std::uint64_t seed, std::uint64_t step,
                            std::uint64_t sample_offset, py::object params_ready) {
            std::function<void(int)> ready;
            if (!params_ready.is_none())
                ready = [&params_ready](int layer) {
                    py::gil_scoped_acquire gil;
                    params_ready(layer);
                };
            py::gil_scoped_release release;
            n.backward(StepContext{true, seed, step, sample_offset}, ready);
        }, py::arg("seed"), py::arg("step"), py::arg("sample_offset") = 0,
           py::arg("params_ready") = py::none())
        .def("update", [](Net& n) {
            py::gil_scoped_release release;
            n.update();
        })
        .def("train_step", [](Net& n, const std::vector<py::array>& batch, std::uint64_t seed,
                              std::uint64_t step) {
            auto tensors = borrow_list(batch, "Net.train_step", "batch");
            py::gil_scoped_release release;
            n.train_step(tensors, StepContext{true, seed, step});
        }, py::arg("batch"), py::arg("seed"), py::arg("step"))
        .def("output", [](const Net& n, int i) {
            // A copy: the net reuses its activation buffers on the next step.
            return tensor_to_numpy(n.output(i).to(Device::cpu()));
        }, py::arg("layer"))
        .def("set_neuron_fusion", &Net::set_neuron_fusion, py::arg("on"))
        .def("fused_neuron", &Net::fused_neuron, py::arg("layer"))
        .def("fused_reader", &Net::fused_reader, py::arg("layer"))
        .def("pipelined_reader", &Net::pipelined_reader, py::arg("layer"))
        .def("set_frozen", &Net::set_frozen, py::arg("layer"), py::arg("frozen"))
        .def("frozen", [](Net& n, int i) { return n.layer(i).frozen(); }, py::arg("layer"))
        .def("param_gradient_passes",
             [](Net& n, int i) { return n.layer(i).param_gradient_passes(); }, py::arg("layer"))
        .def("backward_passes", &Net::backward_passes, py::arg("layer"))
        .def("set_profiling", &Net::set_profiling, py::arg("on"))
        .def("layer_times", [](const Net& n) {
            py::list out;
            for (const auto& t : n.layer_times())
                out.append(py::make_tuple(t.forward, t.backward, t.update));
            return out;
        })
        .def("cost_report", [](Net& n, int i) {
            const CostReport r = n.layer(i).cost_report();
            return py::make_tuple(r.loss, r.top1_errors, r.topk_errors, r.samples);
        }, py::arg("layer"));
}

}  // namespace convnet::bindings
