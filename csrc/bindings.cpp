// pybind11 bindings of convnet._core: check and convert arguments, release the GIL, call the
// facade in api.h. No logic lives here; argument checking with friendly messages and output
// allocation happen in convnet/ops.py, and the checks below only guard memory safety.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>

#include "api.h"
#include "core/cuda_runtime.h"
#include "bindings/tensor_ops.h"

namespace py = pybind11;
using namespace convnet;

namespace {

// A tensor over a numpy array's memory (no copy). The array must stay alive during the call,
// which it does: the caller holds it.
Tensor borrow(const py::array& a, const char* op, const char* name, bool writeable = false) {
    const bool f32 = a.dtype().equal(py::dtype::of<float>());
    const bool f64 = a.dtype().equal(py::dtype::of<double>());
    CONVNET_ARG_CHECK(f32 || f64, op, ": ", name, " must be float32 or float64");
    CONVNET_ARG_CHECK(a.flags() & py::array::c_style, op, ": ", name, " must be C-contiguous");
    CONVNET_ARG_CHECK(!writeable || a.writeable(), op, ": ", name, " must be writeable");
    Shape shape(a.shape(), a.shape() + a.ndim());
    return Tensor::borrow(const_cast<void*>(a.data()), shape, f32 ? DType::f32 : DType::f64,
                          Device::cpu());
}

std::vector<Tensor> borrow_list(const std::vector<py::array>& arrays, const char* op,
                                const char* name, bool writeable = false) {
    std::vector<Tensor> out;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        const std::string label = std::string(name) + "[" + std::to_string(i) + "]";
        out.push_back(borrow(arrays[i], op, label.c_str(), writeable));
    }
    return out;
}

Tensor borrow_optional(const std::optional<py::array>& a, const char* op, const char* name,
                       bool writeable = false) {
    return a ? borrow(*a, op, name, writeable) : Tensor();
}

NeuronParams neuron_params(const std::string& name, double a, double b) {
    return NeuronParams{neuron_type_from_name(name), a, b};
}

LrnParams lrn_params(int size, int pre, bool blocked, double alpha, double beta, double k) {
    LrnParams p;
    p.size = size, p.pre = pre, p.blocked = blocked, p.alpha = alpha, p.beta = beta, p.k = k;
    return p;
}

PoolParams pool_params(const std::string& mode, int size_h, int size_w, int stride_h,
                       int stride_w, int start_h, int start_w) {
    return PoolParams{pool_mode_from_name(mode), size_h, size_w, stride_h, stride_w, start_h,
                      start_w};
}

DropoutParams dropout_params(double p, std::uint64_t seed, std::uint64_t step,
                             std::uint32_t layer, bool train, bool inverted) {
    return DropoutParams{p, seed, step, layer, train, inverted};
}

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

// A numpy view of a CPU tensor that keeps its storage alive.
py::array tensor_to_numpy(const Tensor& t) {
    CONVNET_ARG_CHECK(t.device().is_cpu(), "Tensor.numpy: the tensor is on ", t.device().str(),
                      "; copy it with .to('cpu') first");
    auto* keep = new Tensor(t);
    py::capsule owner(keep, [](void* p) { delete static_cast<Tensor*>(p); });
    std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
    if (t.dtype() == DType::f32) return py::array_t<float>(shape, t.data<float>(), owner);
    return py::array_t<double>(shape, t.data<double>(), owner);
}

Tensor tensor_from_numpy(const py::array& a, const std::string& device) {
    Tensor src = borrow(a, "Tensor.from_numpy", "array");
    return src.to(Device::parse(device));
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "convnet's C++ core: tensors, devices and the CPU/CUDA ops (see convnet.ops)";

    static py::exception<Error> error_type(m, "Error", PyExc_RuntimeError);
    static py::exception<ShapeError> shape_error_type(m, "ShapeError", PyExc_ValueError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const ShapeError& e) {
            PyErr_SetString(shape_error_type.ptr(), e.what());
        } catch (const ArgumentError& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const Error& e) {
            PyErr_SetString(error_type.ptr(), e.what());
        }
    });

    // ---- core --------------------------------------------------------------------------------
    m.def("cuda_device_count", &cuda_device_count);
    m.def("built_with_cuda", &built_with_cuda);
#ifdef CONVNET_WITH_CUDA
    // For benchmarks and tests on a GPU: synchronisation, event timing, the device's figures.
    m.def("cuda_synchronize", [](int device) {
        py::gil_scoped_release release;
        cuda::synchronize(device);
    }, py::arg("device") = 0);
    m.def("cuda_time_ms", [](py::function work, int repeats, int warmup, int device) {
        // work() launches ops, each of which releases the GIL while it runs.
        return cuda::time_ms(device, [&] { work(); }, repeats, warmup);
    }, py::arg("work"), py::arg("repeats") = 20, py::arg("warmup") = 3, py::arg("device") = 0);
    m.def("pinned_array", [](const std::vector<py::ssize_t>& shape) {
        // A float32 numpy array in page-locked memory, freed when the array goes.
        std::size_t count = 1;
        for (auto d : shape) count *= static_cast<std::size_t>(d);
        void* ptr = cuda::host_alloc_pinned(std::max<std::size_t>(count, 1) * sizeof(float));
        py::capsule owner(ptr, [](void* p) { cuda::host_free_pinned(p); });
        return py::array_t<float>(shape, static_cast<float*>(ptr), owner);
    }, py::arg("shape"));
    m.def("cuda_device_info", [](int device) {
        const cuda::DeviceInfo d = cuda::device_info(device);
        py::dict out;
        out["name"] = d.name, out["major"] = d.major, out["minor"] = d.minor;
        out["sms"] = d.sms, out["clock_ghz"] = d.clock_ghz, out["memory_gib"] = d.memory_gib;
        return out;
    }, py::arg("device") = 0);
#endif
    m.def("get_num_threads", &get_num_threads);
    m.def("set_num_threads", &set_num_threads, py::arg("n"));

    py::class_<Device>(m, "Device")
        .def(py::init([](const std::string& s) { return Device::parse(s); }), py::arg("spec"))
        .def_property_readonly("type", [](const Device& d) { return d.is_cpu() ? "cpu" : "cuda"; })
        .def_readonly("index", &Device::index)
        .def("__str__", &Device::str)
        .def("__repr__", [](const Device& d) { return "Device('" + d.str() + "')"; })
        .def("__eq__", [](const Device& a, const Device& b) { return a == b; })
        .def("__hash__", [](const Device& d) { return std::hash<std::string>()(d.str()); });

    m.def("allocator_stats", [](const std::string& device) {
        const AllocatorStats s = CachingAllocator::of(Device::parse(device)).stats();
        py::dict d;
        d["bytes_in_use"] = s.bytes_in_use;
        d["bytes_cached"] = s.bytes_cached;
        d["allocations"] = s.allocations;
        d["cache_hits"] = s.cache_hits;
        return d;
    }, py::arg("device") = "cpu");
    m.def("empty_cache", [](const std::string& device) {
        CachingAllocator::of(Device::parse(device)).empty_cache();
    }, py::arg("device") = "cpu");

    py::class_<Tensor>(m, "Tensor")
        .def_static("from_numpy", &tensor_from_numpy, py::arg("array"), py::arg("device") = "cpu")
        .def_static("zeros", [](const std::vector<std::int64_t>& shape, const std::string& dtype,
                                const std::string& device) {
            CONVNET_ARG_CHECK(dtype == "float32" || dtype == "float64",
                              "Tensor.zeros: dtype must be 'float32' or 'float64', got '", dtype, "'");
            return Tensor::zeros(shape, dtype == "float32" ? DType::f32 : DType::f64,
                                 Device::parse(device));
        }, py::arg("shape"), py::arg("dtype") = "float32", py::arg("device") = "cpu")
        .def_property_readonly("shape", [](const Tensor& t) { return py::tuple(py::cast(t.shape())); })
        .def_property_readonly("dtype", [](const Tensor& t) { return dtype_name(t.dtype()); })
        .def_property_readonly("device", &Tensor::device)
        .def_property_readonly("numel", &Tensor::numel)
        .def("reshape", [](const Tensor& t, const std::vector<std::int64_t>& s) { return t.reshape(s); })
        .def("to", [](const Tensor& t, const std::string& d) { return t.to(Device::parse(d)); })
        .def("numpy", &tensor_to_numpy)
        .def("shares_storage_with", [](const Tensor& a, const Tensor& b) {
            return a.storage() == b.storage();
        })
        .def("__repr__", [](const Tensor& t) {
            return "Tensor(shape=" + shape_str(t.shape()) + ", dtype=" + dtype_name(t.dtype()) +
                   ", device=" + t.device().str() + ")";
        });

    // ---- the net ------------------------------------------------------------------------------
    m.def("layer_types", &registered_layer_types);
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
        .def("layer_device", [](const Net& n, int i) { return n.layer_device(i).str(); })
        // Parameters by (layer, index, kind): kind 0 value, 1 gradient, 2 velocity. get returns a
        // host copy and set copies in, on any device; param_value & co. are CPU-only views.
        .def("param_shape", [](Net& n, int i, int j) {
            return n.layer(i).params().at(j).value.shape();
        })
        .def("param_get", [](Net& n, int i, int j, int kind) {
            const Param& p = n.layer(i).params().at(j);
            const Tensor& t = kind == 0 ? p.value : kind == 1 ? p.grad : p.velocity;
            return tensor_to_numpy(t.to(Device::cpu()));
        })
        .def("param_set", [](Net& n, int i, int j, int kind, py::array value) {
            const Param& p = n.layer(i).params().at(j);
            const Tensor& t = kind == 0 ? p.value : kind == 1 ? p.grad : p.velocity;
            Tensor src = borrow(value, "Net.param_set", "value");
            CONVNET_ARG_CHECK(src.shape() == t.shape() && src.dtype() == t.dtype(),
                              "Net.param_set: ", p.name, " is ", dtype_name(t.dtype()),
                              shape_str(t.shape()), ", got ", dtype_name(src.dtype()),
                              shape_str(src.shape()));
            t.copy_from(src);
        })
        .def_property_readonly("size", &Net::size)
        .def_property_readonly("data_layers", &Net::data_layers)
        .def("output_shape", [](const Net& n, int i) { return n.output_shape(i); })
        .def("flops_per_sample", [](Net& n, int i) { return n.layer(i).flops_per_sample(); })
        .def("param_count", [](Net& n, int i) { return n.layer(i).params().size(); })
        .def("param_name", [](Net& n, int i, int j) { return n.layer(i).params().at(j).name; })
        .def("param_value", [](Net& n, int i, int j) {
            CONVNET_ARG_CHECK(n.device().is_cpu(), "Net.param_value: a view needs a CPU net; "
                              "use param_get on ", n.device().str());
            return tensor_to_numpy(n.layer(i).params().at(j).value);
        })
        .def("param_grad", [](Net& n, int i, int j) {
            CONVNET_ARG_CHECK(n.device().is_cpu(), "Net.param_grad: a view needs a CPU net; "
                              "use param_get on ", n.device().str());
            return tensor_to_numpy(n.layer(i).params().at(j).grad);
        })
        .def("param_velocity", [](Net& n, int i, int j) {
            CONVNET_ARG_CHECK(n.device().is_cpu(), "Net.param_velocity: a view needs a CPU net; "
                              "use param_get on ", n.device().str());
            return tensor_to_numpy(n.layer(i).params().at(j).velocity);
        })
        .def("set_hyper", [](Net& n, int i, int j, double eps, double mom, double wc) {
            Param& p = n.layer(i).params().at(j);
            p.eps = eps, p.mom = mom, p.wc = wc;
        })
        .def("forward", [](Net& n, const std::vector<py::array>& batch, bool train,
                           std::uint64_t seed, std::uint64_t step, bool run_costs) {
            auto tensors = borrow_list(batch, "Net.forward", "batch");
            py::gil_scoped_release release;
            n.forward(tensors, StepContext{train, seed, step}, run_costs);
        })
        .def("backward", [](Net& n, std::uint64_t seed, std::uint64_t step) {
            py::gil_scoped_release release;
            n.backward(StepContext{true, seed, step});
        })
        .def("update", [](Net& n) {
            py::gil_scoped_release release;
            n.update();
        })
        .def("train_step", [](Net& n, const std::vector<py::array>& batch, std::uint64_t seed,
                              std::uint64_t step) {
            auto tensors = borrow_list(batch, "Net.train_step", "batch");
            py::gil_scoped_release release;
            n.train_step(tensors, StepContext{true, seed, step});
        })
        .def("output", [](const Net& n, int i) {
            // A copy: the net reuses its activation buffers on the next step.
            return tensor_to_numpy(n.output(i).to(Device::cpu()));
        })
        .def("cost_report", [](Net& n, int i) {
            const CostReport r = n.layer(i).cost_report();
            return py::make_tuple(r.loss, r.top1_errors, r.topk_errors, r.samples);
        });

    // ---- ops (outputs are allocated by convnet/ops.py) ----------------------------------------
    m.def("conv_output_size", [](std::int64_t size, std::int64_t kernel, int stride, int padding,
                                 const std::string& rule) {
        return conv_output_size(size, kernel, stride, padding, conv_size_rule_from_name(rule));
    });
    m.def("conv_forward", [](py::array x, py::array w, std::optional<py::array> b, py::array y,
                             int sh, int sw, int ph, int pw, int groups) {
        const char* op = "conv_forward";
        Tensor tx = borrow(x, op, "x"), tw = borrow(w, op, "w"), ty = borrow(y, op, "y", true);
        Tensor tb = borrow_optional(b, op, "b");
        py::gil_scoped_release release;
        conv_forward(tx, tw, tb, ty, conv_geometry(tx, tw, ty, sh, sw, ph, pw, groups, op));
    });
    m.def("conv_backward", [](py::array x, py::array w, py::array dy, std::optional<py::array> dx,
                              std::optional<py::array> dw, std::optional<py::array> db, int sh,
                              int sw, int ph, int pw, int groups) {
        const char* op = "conv_backward";
        Tensor tx = borrow(x, op, "x"), tw = borrow(w, op, "w"), tdy = borrow(dy, op, "dy");
        Tensor tdx = borrow_optional(dx, op, "dx", true), tdw = borrow_optional(dw, op, "dw", true);
        Tensor tdb = borrow_optional(db, op, "db", true);
        py::gil_scoped_release release;
        conv_backward(tx, tw, tdy, tdx, tdw, tdb,
                      conv_geometry(tx, tw, tdy, sh, sw, ph, pw, groups, op));
    });

    m.def("local_forward", [](py::array x, py::array w, std::optional<py::array> b, py::array y,
                              int sh, int sw, int ph, int pw, int groups) {
        const char* op = "local_forward";
        Tensor tx = borrow(x, op, "x"), tw = borrow(w, op, "w"), ty = borrow(y, op, "y", true);
        Tensor tb = borrow_optional(b, op, "b");
        py::gil_scoped_release release;
        local_forward(tx, tw, tb, ty, local_geometry(tx, tw, ty, sh, sw, ph, pw, groups, op));
    });
    m.def("local_backward", [](py::array x, py::array w, py::array dy,
                               std::optional<py::array> dx, std::optional<py::array> dw,
                               std::optional<py::array> db, int sh, int sw, int ph, int pw,
                               int groups) {
        const char* op = "local_backward";
        Tensor tx = borrow(x, op, "x"), tw = borrow(w, op, "w"), tdy = borrow(dy, op, "dy");
        Tensor tdx = borrow_optional(dx, op, "dx", true), tdw = borrow_optional(dw, op, "dw", true);
        Tensor tdb = borrow_optional(db, op, "db", true);
        py::gil_scoped_release release;
        local_backward(tx, tw, tdy, tdx, tdw, tdb,
                       local_geometry(tx, tw, tdy, sh, sw, ph, pw, groups, op));
    });

    m.def("fc_forward", [](py::array x, py::array w, std::optional<py::array> b, py::array y) {
        const char* op = "fc_forward";
        Tensor tx = borrow(x, op, "x"), tw = borrow(w, op, "w"), ty = borrow(y, op, "y", true);
        Tensor tb = borrow_optional(b, op, "b");
        py::gil_scoped_release release;
        fc_forward(tx, tw, tb, ty);
    });
    m.def("fc_backward", [](py::array x, py::array w, py::array dy, std::optional<py::array> dx,
                            std::optional<py::array> dw, std::optional<py::array> db) {
        const char* op = "fc_backward";
        Tensor tx = borrow(x, op, "x"), tw = borrow(w, op, "w"), tdy = borrow(dy, op, "dy");
        Tensor tdx = borrow_optional(dx, op, "dx", true), tdw = borrow_optional(dw, op, "dw", true);
        Tensor tdb = borrow_optional(db, op, "db", true);
        py::gil_scoped_release release;
        fc_backward(tx, tw, tdy, tdx, tdw, tdb);
    });

    m.def("neuron_param_count", [](const std::string& name) {
        return neuron_param_count(neuron_type_from_name(name));
    });
    m.def("neuron_forward", [](py::array x, py::array y, const std::string& name, double a,
                               double b) {
        const char* op = "neuron_forward";
        Tensor tx = borrow(x, op, "x"), ty = borrow(y, op, "y", true);
        const NeuronParams p = neuron_params(name, a, b);
        py::gil_scoped_release release;
        neuron_forward(tx, ty, p);
    });
    m.def("neuron_backward", [](py::array x, py::array y, py::array dy, py::array dx,
                                const std::string& name, double a, double b) {
        const char* op = "neuron_backward";
        Tensor tx = borrow(x, op, "x"), ty = borrow(y, op, "y"), tdy = borrow(dy, op, "dy");
        Tensor tdx = borrow(dx, op, "dx", true);
        const NeuronParams p = neuron_params(name, a, b);
        py::gil_scoped_release release;
        neuron_backward(tx, ty, tdy, tdx, p);
    });

    // Tensor forms of the ops that have a CUDA kernel, for device tensors (and GPU tests).
    bindings::bind_norm_pool_tensor_ops(m);
    bindings::bind_elementwise_tensor_ops(m);
    bindings::bind_gemm_conv_tensor_ops(m);
    bindings::bind_interop(m);
    m.def("neuron_forward_tensor", [](const Tensor& x, const Tensor& y, const std::string& name,
                                      double a, double b) {
        const NeuronParams p = neuron_params(name, a, b);
        py::gil_scoped_release release;
        neuron_forward(x, y, p);
    });
    m.def("neuron_backward_tensor", [](const Tensor& x, const Tensor& y, const Tensor& dy,
                                       const Tensor& dx, const std::string& name, double a,
                                       double b) {
        const NeuronParams p = neuron_params(name, a, b);
        py::gil_scoped_release release;
        neuron_backward(x, y, dy, dx, p);
    });

    m.def("lrn_forward", [](py::array x, py::array y, int size, int pre, bool blocked,
                            double alpha, double beta, double k) {
        const char* op = "lrn_forward";
        Tensor tx = borrow(x, op, "x"), ty = borrow(y, op, "y", true);
        py::gil_scoped_release release;
        lrn_forward(tx, ty, lrn_params(size, pre, blocked, alpha, beta, k));
    });
    m.def("lrn_backward", [](py::array x, py::array y, py::array dy, py::array dx, int size,
                             int pre, bool blocked, double alpha, double beta, double k) {
        const char* op = "lrn_backward";
        Tensor tx = borrow(x, op, "x"), ty = borrow(y, op, "y"), tdy = borrow(dy, op, "dy");
        Tensor tdx = borrow(dx, op, "dx", true);
        py::gil_scoped_release release;
        lrn_backward(tx, ty, tdy, tdx, lrn_params(size, pre, blocked, alpha, beta, k));
    });

    // Within-map normalisations: rnorm and cnorm share their parameters.
    auto def_within_map = [&m](const char* fwd_name, const char* bwd_name, auto fwd, auto bwd) {
        m.def(fwd_name, [fwd_name, fwd](py::array x, py::array y, int size, int pre, double alpha,
                                        double beta, double k) {
            Tensor tx = borrow(x, fwd_name, "x"), ty = borrow(y, fwd_name, "y", true);
            py::gil_scoped_release release;
            fwd(tx, ty, RnormParams{size, pre, alpha, beta, k});
        });
        m.def(bwd_name, [bwd_name, bwd](py::array x, py::array y, py::array dy, py::array dx,
                                        int size, int pre, double alpha, double beta, double k) {
            Tensor tx = borrow(x, bwd_name, "x"), ty = borrow(y, bwd_name, "y");
            Tensor tdy = borrow(dy, bwd_name, "dy"), tdx = borrow(dx, bwd_name, "dx", true);
            py::gil_scoped_release release;
            bwd(tx, ty, tdy, tdx, RnormParams{size, pre, alpha, beta, k}, 0.f);
        });
    };
    def_within_map("rnorm_forward", "rnorm_backward", &rnorm_forward, &rnorm_backward);
    def_within_map("cnorm_forward", "cnorm_backward", &cnorm_forward, &cnorm_backward);

    m.def("pool_output_size", &pool_output_size);
    m.def("pool_forward", [](py::array x, py::array y, const std::string& mode, int size_h,
                             int size_w, int stride_h, int stride_w, int start_h, int start_w) {
        const char* op = "pool_forward";
        Tensor tx = borrow(x, op, "x"), ty = borrow(y, op, "y", true);
        const PoolParams p = pool_params(mode, size_h, size_w, stride_h, stride_w, start_h, start_w);
        py::gil_scoped_release release;
        pool_forward(tx, ty, p);
    });
    m.def("pool_backward", [](py::array x, py::array y, py::array dy, py::array dx,
                              const std::string& mode, int size_h, int size_w, int stride_h,
                              int stride_w, int start_h, int start_w) {
        const char* op = "pool_backward";
        Tensor tx = borrow(x, op, "x"), ty = borrow(y, op, "y"), tdy = borrow(dy, op, "dy");
        Tensor tdx = borrow(dx, op, "dx", true);
        const PoolParams p = pool_params(mode, size_h, size_w, stride_h, stride_w, start_h, start_w);
        py::gil_scoped_release release;
        pool_backward(tx, ty, tdy, tdx, p);
    });

    using Arrays = std::vector<py::array>;
    m.def("eltsum_forward", [](const Arrays& xs, const std::vector<double>& coeffs, py::array y) {
        const char* op = "eltsum_forward";
        auto txs = borrow_list(xs, op, "xs");
        Tensor ty = borrow(y, op, "y", true);
        py::gil_scoped_release release;
        eltsum_forward(txs, coeffs, ty);
    });
    m.def("eltsum_backward", [](py::array dy, const std::vector<double>& coeffs,
                                const Arrays& dxs) {
        const char* op = "eltsum_backward";
        Tensor tdy = borrow(dy, op, "dy");
        auto tdxs = borrow_list(dxs, op, "dxs", true);
        py::gil_scoped_release release;
        eltsum_backward(tdy, coeffs, tdxs);
    });
    m.def("eltmax_forward", [](const Arrays& xs, py::array y) {
        const char* op = "eltmax_forward";
        auto txs = borrow_list(xs, op, "xs");
        Tensor ty = borrow(y, op, "y", true);
        py::gil_scoped_release release;
        eltmax_forward(txs, ty);
    });
    m.def("eltmax_backward", [](const Arrays& xs, py::array y, py::array dy, const Arrays& dxs) {
        const char* op = "eltmax_backward";
        auto txs = borrow_list(xs, op, "xs"), tdxs = borrow_list(dxs, op, "dxs", true);
        Tensor ty = borrow(y, op, "y"), tdy = borrow(dy, op, "dy");
        py::gil_scoped_release release;
        eltmax_backward(txs, ty, tdy, tdxs);
    });
    m.def("concat_forward", [](const Arrays& xs, py::array y) {
        const char* op = "concat_forward";
        auto txs = borrow_list(xs, op, "xs");
        Tensor ty = borrow(y, op, "y", true);
        py::gil_scoped_release release;
        concat_forward(txs, ty);
    });
    m.def("concat_backward", [](py::array dy, const Arrays& dxs) {
        const char* op = "concat_backward";
        Tensor tdy = borrow(dy, op, "dy");
        auto tdxs = borrow_list(dxs, op, "dxs", true);
        py::gil_scoped_release release;
        concat_backward(tdy, tdxs);
    });

    m.def("dropout_mask", [](py::array_t<std::uint8_t, py::array::c_style> mask, double p,
                             std::uint64_t seed, std::uint64_t step, std::uint32_t layer) {
        CONVNET_ARG_CHECK(mask.writeable(), "dropout_mask: mask must be writeable");
        std::uint8_t* data = mask.mutable_data();
        const std::int64_t n = mask.size();
        const DropoutParams params = dropout_params(p, seed, step, layer, true, false);
        py::gil_scoped_release release;
        dropout_mask(data, n, params);
    });
    m.def("dropout_forward", [](py::array x, py::array y, double p, std::uint64_t seed,
                                std::uint64_t step, std::uint32_t layer, bool train, bool inverted) {
        const char* op = "dropout_forward";
        Tensor tx = borrow(x, op, "x"), ty = borrow(y, op, "y", true);
        py::gil_scoped_release release;
        dropout_forward(tx, ty, dropout_params(p, seed, step, layer, train, inverted));
    });
    m.def("dropout_backward", [](py::array dy, py::array dx, double p, std::uint64_t seed,
                                 std::uint64_t step, std::uint32_t layer, bool train,
                                 bool inverted) {
        const char* op = "dropout_backward";
        Tensor tdy = borrow(dy, op, "dy"), tdx = borrow(dx, op, "dx", true);
        py::gil_scoped_release release;
        dropout_backward(tdy, tdx, dropout_params(p, seed, step, layer, train, inverted));
    });

    m.def("softmax_forward", [](py::array x, py::array probs) {
        const char* op = "softmax_forward";
        Tensor tx = borrow(x, op, "x"), tp = borrow(probs, op, "probs", true);
        py::gil_scoped_release release;
        softmax_forward(tx, tp);
    });
    m.def("softmax_backward", [](py::array y, py::array dy, py::array dx) {
        const char* op = "softmax_backward";
        Tensor ty = borrow(y, op, "y"), tdy = borrow(dy, op, "dy"), tdx = borrow(dx, op, "dx", true);
        py::gil_scoped_release release;
        softmax_backward(ty, tdy, tdx);
    });
    m.def("softmax_logloss", [](py::array x, py::array_t<std::int32_t, py::array::c_style> labels,
                                py::array probs, std::optional<py::array> dx, int topk) {
        const char* op = "softmax_logloss";
        Tensor tx = borrow(x, op, "x"), tp = borrow(probs, op, "probs", true);
        Tensor tdx = borrow_optional(dx, op, "dx", true);
        CONVNET_ARG_CHECK(tx.ndim() == 2 && labels.ndim() == 1 && labels.shape(0) == tx.dim(0), op,
                          ": labels must have shape (N,) for x of shape ", shape_str(tx.shape()));
        const std::int32_t* lab = labels.data();
        LogLossResult r;
        {
            py::gil_scoped_release release;
            r = softmax_logloss(tx, lab, tp, tdx, topk);
        }
        return py::make_tuple(r.loss, r.top1_errors, r.topk_errors);
    });

    m.def("sgd_update", [](py::array w, py::array grad, py::array v, double eps, double mom,
                           double wc) {
        const char* op = "sgd_update";
        Tensor tw = borrow(w, op, "w", true), tg = borrow(grad, op, "grad");
        Tensor tv = borrow(v, op, "v", true);
        py::gil_scoped_release release;
        sgd_update(tw, tg, tv, SgdParams{eps, mom, wc});
    });
}
