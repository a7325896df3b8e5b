// The gemm-based ops over tensors (CPU or CUDA): convolution, locally connected and fully
// connected layers. Convert, release the GIL, call the op; no logic lives here. Outputs come
// allocated (convnet.ops allocates them for numpy callers); an optional tensor passed as None
// skips that input or gradient; backward forms take beta (0 overwrites, 1 accumulates). The math
// precision of the GPU paths ("fp32", "tf32", "bf16") is process-wide.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "api.h"
#include "bindings/convert.h"
#include "bindings/families.h"
#include "cpu/direct_conv.h"
#include "ops/precision.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {
using OptTensor = std::optional<Tensor>;
using ConvGeometryFn = ConvGeometry (*)(const Tensor&, const Tensor&, const Tensor&, int, int,
                                        int, int, int, const char*);
using ForwardFn = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                           const ConvGeometry&);
using BackwardFn = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                            const Tensor&, const Tensor&, const ConvGeometry&, float);

// conv and local share their arguments: only the filter layout (and so the geometry) differs.
void def_filter_op(py::module_& m, const char* fwd_name, const char* bwd_name,
                   ConvGeometryFn geometry, ForwardFn fwd, BackwardFn bwd) {
    m.def(fwd_name, [=](const Tensor& x, const Tensor& w, const OptTensor& b, const Tensor& y,
                        int sh, int sw, int ph, int pw, int groups) {
        const Tensor tb = or_undefined(b);
        const ConvGeometry g = geometry(x, w, y, sh, sw, ph, pw, groups, fwd_name);
        py::gil_scoped_release release;
        fwd(x, w, tb, y, g);
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"), py::arg("sh"), py::arg("sw"),
       py::arg("ph"), py::arg("pw"), py::arg("groups"));
    m.def(bwd_name, [=](const Tensor& x, const Tensor& w, const Tensor& dy, const OptTensor& dx,
                        const OptTensor& dw, const OptTensor& db, int sh, int sw, int ph, int pw,
                        int groups, float beta) {
        const Tensor tdx = or_undefined(dx), tdw = or_undefined(dw), tdb = or_undefined(db);
        const ConvGeometry g = geometry(x, w, dy, sh, sw, ph, pw, groups, bwd_name);
        py::gil_scoped_release release;
        bwd(x, w, dy, tdx, tdw, tdb, g, beta);
    }, py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("dx"), py::arg("dw"), py::arg("db"),
       py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"), py::arg("groups"),
       py::arg("beta") = 0.f);
}
}  // namespace

void bind_gemm_conv_ops(py::module_& m) {
    m.def("set_cpu_conv_algorithm", &direct_conv::set_algorithm, py::arg("name"),
          "CPU convolutions: 'auto' (direct where it fits), 'gemm' or 'direct'.");
    m.def("get_cpu_conv_algorithm", &direct_conv::algorithm);
    m.def("cpu_direct_conv_calls", &direct_conv::calls);
    m.def("cpu_direct_conv_supported", &direct_conv::cpu_supported,
          "Whether this CPU runs the direct convolution (AVX-512F).");
    m.def("set_math_precision", [](const std::string& name) {
        set_math_precision(math_precision_from_name(name));
    }, py::arg("name"));
    m.def("get_math_precision",
          [] { return std::string(math_precision_name(current_math_precision())); });

    m.def("conv_output_size", [](std::int64_t size, std::int64_t kernel, int stride, int padding,
                                 const std::string& rule) {
        return conv_output_size(size, kernel, stride, padding, conv_size_rule_from_name(rule));
    }, py::arg("size"), py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("rule"));
    // The binding has no neuron argument (the layer graph fuses neurons, not Python callers).
    def_filter_op(m, "conv_forward", "conv_backward", &conv_geometry,
                  +[](const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& y,
                      const ConvGeometry& g) { conv_forward(x, w, b, y, g); },
                  +[](const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                      const Tensor& dw, const Tensor& db, const ConvGeometry& g, float beta) {
                      conv_backward(x, w, dy, dx, dw, db, g, beta);
                  });
    def_filter_op(m, "local_forward", "local_backward", &local_geometry, &local_forward,
                  &local_backward);

    m.def("fc_forward", [](const Tensor& x, const Tensor& w, const OptTensor& b, const Tensor& y) {
        const Tensor tb = or_undefined(b);
        py::gil_scoped_release release;
        fc_forward(x, w, tb, y);
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"));
    m.def("fc_backward", [](const Tensor& x, const Tensor& w, const Tensor& dy,
                            const OptTensor& dx, const OptTensor& dw, const OptTensor& db,
                            float beta) {
        const Tensor tdx = or_undefined(dx), tdw = or_undefined(dw), tdb = or_undefined(db);
        py::gil_scoped_release release;
        fc_backward(x, w, dy, tdx, tdw, tdb, beta);
    }, py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("dx"), py::arg("dw"), py::arg("db"),
       py::arg("beta") = 0.f);
}

}  // namespace convnet::bindings
