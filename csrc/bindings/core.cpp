// The core of convnet._core: its exceptions, the CPU threads, the CUDA helpers of the benchmarks
// and GPU tests, the caching allocator, Device and Tensor.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <string>

#include "api.h"
#include "bindings/convert.h"
#include "bindings/families.h"
#include "core/cuda_runtime.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {

void bind_exceptions(py::module_& m) {
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
}

#ifdef CONVNET_WITH_CUDA
// For benchmarks and tests on a GPU: synchronisation, event timing, the device's figures.
void bind_cuda_helpers(py::module_& m) {
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
}
#endif

void bind_allocator(py::module_& m) {
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
}

void bind_device(py::module_& m) {
    py::class_<Device>(m, "Device")
        .def(py::init([](const std::string& s) { return Device::parse(s); }), py::arg("spec"))
        .def_property_readonly("type", [](const Device& d) { return d.is_cpu() ? "cpu" : "cuda"; })
        .def_readonly("index", &Device::index)
        .def("__str__", &Device::str)
        .def("__repr__", [](const Device& d) { return "Device('" + d.str() + "')"; })
        .def("__eq__", [](const Device& a, const Device& b) { return a == b; },
             py::arg("other"))
        .def("__hash__", [](const Device& d) { return std::hash<std::string>()(d.str()); });
}

void bind_tensor(py::module_& m) {
    py::class_<Tensor>(m, "Tensor")
        .def_static("from_numpy", [](const py::array& a, const std::string& device) {
            return borrow(a, "Tensor.from_numpy", "array").to(Device::parse(device));
        }, py::arg("array"), py::arg("device") = "cpu")
        .def_static("zeros", [](const std::vector<std::int64_t>& shape, const std::string& dtype,
                                const std::string& device) {
            CONVNET_ARG_CHECK(dtype == "float32" || dtype == "float64",
                              "Tensor.zeros: dtype must be 'float32' or 'float64', got '", dtype,
                              "'");
            return Tensor::zeros(shape, dtype == "float32" ? DType::f32 : DType::f64,
                                 Device::parse(device));
        }, py::arg("shape"), py::arg("dtype") = "float32", py::arg("device") = "cpu")
        .def_property_readonly("shape",
                               [](const Tensor& t) { return py::tuple(py::cast(t.shape())); })
        .def_property_readonly("dtype", [](const Tensor& t) { return dtype_name(t.dtype()); })
        .def_property_readonly("device", &Tensor::device)
        .def_property_readonly("numel", &Tensor::numel)
        .def("reshape",
             [](const Tensor& t, const std::vector<std::int64_t>& s) { return t.reshape(s); },
             py::arg("shape"))
        .def("to", [](const Tensor& t, const std::string& d) { return t.to(Device::parse(d)); },
             py::arg("device"))
        .def("numpy", &tensor_to_numpy)
        .def("shares_storage_with", [](const Tensor& a, const Tensor& b) {
            return a.storage() == b.storage();
        }, py::arg("other"))
        .def("__repr__", [](const Tensor& t) {
            return "Tensor(shape=" + shape_str(t.shape()) + ", dtype=" + dtype_name(t.dtype()) +
                   ", device=" + t.device().str() + ")";
        });
}

}  // namespace

void bind_core(py::module_& m) {
    bind_exceptions(m);
    m.def("cuda_device_count", &cuda_device_count);
    m.def("built_with_cuda", &built_with_cuda);
#ifdef CONVNET_WITH_CUDA
    bind_cuda_helpers(m);
#endif
    m.def("get_num_threads", &get_num_threads);
    m.def("set_num_threads", &set_num_threads, py::arg("n"));
    bind_allocator(m);
    bind_device(m);
    bind_tensor(m);
}

}  // namespace convnet::bindings
