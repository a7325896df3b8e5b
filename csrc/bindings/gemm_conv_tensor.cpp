// Tensor forms of the gemm and conv ops for device tensors (the GPU tests call these): check,
// release the GIL, call the op. No logic beyond conversion lives here. Parameters follow the
// numpy forms in bindings.cpp, plus beta (0 overwrites, 1 accumulates) on the backward ops; an
// optional tensor passed as None skips that input or gradient. The math precision of the GPU
// paths ("fp32", "tf32", "bf16") is process-wide: set_math_precision / get_math_precision.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "api.h"
#include "ops/precision.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {
using OptTensor = std::optional<Tensor>;

Tensor or_undefined(const OptTensor& t) { return t ? *t : Tensor(); }
}  // namespace

void bind_gemm_conv_tensor_ops(py::module_& m) {
    m.def("set_math_precision", [](const std::string& name) {
        set_math_precision(math_precision_from_name(name));
    });
    m.def("get_math_precision",
          [] { return std::string(math_precision_name(current_math_precision())); });

    m.def("fc_forward_tensor", [](const Tensor& x, const Tensor& w, const OptTensor& b,
                                  const Tensor& y) {
        const Tensor tb = or_undefined(b);
        py::gil_scoped_release release;
        fc_forward(x, w, tb, y);
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"));
    m.def("fc_backward_tensor", [](const Tensor& x, const Tensor& w, const Tensor& dy,
                                   const OptTensor& dx, const OptTensor& dw, const OptTensor& db,
                                   float beta) {
        const Tensor tdx = or_undefined(dx), tdw = or_undefined(dw), tdb = or_undefined(db);
        py::gil_scoped_release release;
        fc_backward(x, w, dy, tdx, tdw, tdb, beta);
    }, py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("dx"), py::arg("dw"), py::arg("db"),
       py::arg("beta") = 0.f);

    m.def("conv_forward_tensor", [](const Tensor& x, const Tensor& w, const OptTensor& b,
                                    const Tensor& y, int sh, int sw, int ph, int pw, int groups) {
        const Tensor tb = or_undefined(b);
        py::gil_scoped_release release;
        conv_forward(x, w, tb, y,
                     conv_geometry(x, w, y, sh, sw, ph, pw, groups, "conv_forward"));
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"), py::arg("sh"), py::arg("sw"),
       py::arg("ph"), py::arg("pw"), py::arg("groups"));
    m.def("conv_backward_tensor", [](const Tensor& x, const Tensor& w, const Tensor& dy,
                                     const OptTensor& dx, const OptTensor& dw,
                                     const OptTensor& db, int sh, int sw, int ph, int pw,
                                     int groups, float beta) {
        const Tensor tdx = or_undefined(dx), tdw = or_undefined(dw), tdb = or_undefined(db);
        py::gil_scoped_release release;
        conv_backward(x, w, dy, tdx, tdw, tdb,
                      conv_geometry(x, w, dy, sh, sw, ph, pw, groups, "conv_backward"), beta);
    }, py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("dx"), py::arg("dw"), py::arg("db"),
       py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"), py::arg("groups"),
       py::arg("beta") = 0.f);

    m.def("local_forward_tensor", [](const Tensor& x, const Tensor& w, const OptTensor& b,
                                     const Tensor& y, int sh, int sw, int ph, int pw,
                                     int groups) {
        const Tensor tb = or_undefined(b);
        py::gil_scoped_release release;
        local_forward(x, w, tb, y,
                      local_geometry(x, w, y, sh, sw, ph, pw, groups, "local_forward"));
    }, py::arg("x"), py::arg("w"), py::arg("b"), py::arg("y"), py::arg("sh"), py::arg("sw"),
       py::arg("ph"), py::arg("pw"), py::arg("groups"));
    m.def("local_backward_tensor", [](const Tensor& x, const Tensor& w, const Tensor& dy,
                                      const OptTensor& dx, const OptTensor& dw,
                                      const OptTensor& db, int sh, int sw, int ph, int pw,
                                      int groups, float beta) {
        const Tensor tdx = or_undefined(dx), tdw = or_undefined(dw), tdb = or_undefined(db);
        py::gil_scoped_release release;
        local_backward(x, w, dy, tdx, tdw, tdb,
                       local_geometry(x, w, dy, sh, sw, ph, pw, groups, "local_backward"), beta);
    }, py::arg("x"), py::arg("w"), py::arg("dy"), py::arg("dx"), py::arg("dw"), py::arg("db"),
       py::arg("sh"), py::arg("sw"), py::arg("ph"), py::arg("pw"), py::arg("groups"),
       py::arg("beta") = 0.f);
}

}  // namespace convnet::bindings
