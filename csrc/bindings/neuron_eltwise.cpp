// The element-wise ops over tensors (CPU or CUDA): neurons, eltsum, eltmax, scale, bias_add and
// concat. Convert, release the GIL, call the op; no logic lives here. Backward forms take beta
// (0 overwrites, 1 accumulates).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "api.h"
#include "bindings/families.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {
using Tensors = std::vector<Tensor>;

void bind_neuron(py::module_& m) {
    m.def("neuron_param_count", [](const std::string& name) {
        return neuron_param_count(neuron_type_from_name(name));
    }, py::arg("name"));
    m.def("neuron_forward", [](const Tensor& x, const Tensor& y, const std::string& name,
                               double a, double b) {
        const NeuronParams p{neuron_type_from_name(name), a, b};
        py::gil_scoped_release release;
        neuron_forward(x, y, p);
    }, py::arg("x"), py::arg("y"), py::arg("name"), py::arg("a"), py::arg("b"));
    m.def("neuron_backward", [](const Tensor& x, const Tensor& y, const Tensor& dy,
                                const Tensor& dx, const std::string& name, double a, double b,
                                float beta) {
        const NeuronParams p{neuron_type_from_name(name), a, b};
        py::gil_scoped_release release;
        neuron_backward(x, y, dy, dx, p, beta);
    }, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("name"), py::arg("a"),
       py::arg("b"), py::arg("beta") = 0.f);
}

void bind_combinations(py::module_& m) {
    m.def("eltsum_forward", [](const Tensors& xs, const std::vector<double>& coeffs,
                               const Tensor& y) {
        py::gil_scoped_release release;
        eltsum_forward(xs, coeffs, y);
    }, py::arg("xs"), py::arg("coeffs"), py::arg("y"));
    m.def("eltsum_backward", [](const Tensor& dy, const std::vector<double>& coeffs,
                                const Tensors& dxs, float beta) {
        py::gil_scoped_release release;
        eltsum_backward(dy, coeffs, dxs, beta);
    }, py::arg("dy"), py::arg("coeffs"), py::arg("dxs"), py::arg("beta") = 0.f);
    m.def("eltmax_forward", [](const Tensors& xs, const Tensor& y) {
        py::gil_scoped_release release;
        eltmax_forward(xs, y);
    }, py::arg("xs"), py::arg("y"));
    m.def("eltmax_backward", [](const Tensors& xs, const Tensor& y, const Tensor& dy,
                                const Tensors& dxs, float beta) {
        py::gil_scoped_release release;
        eltmax_backward(xs, y, dy, dxs, beta);
    }, py::arg("xs"), py::arg("y"), py::arg("dy"), py::arg("dxs"), py::arg("beta") = 0.f);
    // out = beta * out + c * input: the gradient of a scaled input (eltsum's backward per input).
    m.def("eltwise_scale", [](const Tensor& input, double c, const Tensor& out, float beta) {
        py::gil_scoped_release release;
        eltwise_scale(input, c, out, beta);
    }, py::arg("input"), py::arg("c"), py::arg("out"), py::arg("beta") = 0.f);
}

void bind_bias_concat(py::module_& m) {
    m.def("bias_add_forward", [](const Tensor& y, const Tensor& b) {
        py::gil_scoped_release release;
        bias_add_forward(y, b);
    }, py::arg("y"), py::arg("b"));
    m.def("bias_add_backward", [](const Tensor& dy, const Tensor& db, float beta) {
        py::gil_scoped_release release;
        bias_add_backward(dy, db, beta);
    }, py::arg("dy"), py::arg("db"), py::arg("beta") = 0.f);
    m.def("concat_forward", [](const Tensors& xs, const Tensor& y) {
        py::gil_scoped_release release;
        concat_forward(xs, y);
    }, py::arg("xs"), py::arg("y"));
    m.def("concat_backward", [](const Tensor& dy, const Tensors& dxs, float beta) {
        py::gil_scoped_release release;
        concat_backward(dy, dxs, beta);
    }, py::arg("dy"), py::arg("dxs"), py::arg("beta") = 0.f);
}
}  // namespace

void bind_neuron_eltwise_ops(py::module_& m) {
    bind_neuron(m);
    bind_combinations(m);
    bind_bias_concat(m);
}

}  // namespace convnet::bindings
