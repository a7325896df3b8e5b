// The normalisation and pooling ops over tensors (CPU or CUDA): convert, release the GIL, call
// the op; no logic lives here. Backward forms take beta_acc (dx = beta_acc * dx + gradient, 0
// overwrites), named so because the normalisations' own `beta` is their exponent.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "api.h"
#include "bindings/families.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {
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

using WithinMapForward = void (*)(const Tensor&, const Tensor&, const RnormParams&);
using WithinMapBackward = void (*)(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                   const RnormParams&, float);

// rnorm and cnorm (normalisations within each map) share their parameters.
void def_within_map(py::module_& m, const char* fwd_name, const char* bwd_name,
                    WithinMapForward fwd, WithinMapBackward bwd) {
    m.def(fwd_name, [fwd](const Tensor& x, const Tensor& y, int size, int pre, double alpha,
                          double beta, double k) {
        const RnormParams p{size, pre, alpha, beta, k};
        py::gil_scoped_release release;
        fwd(x, y, p);
    }, py::arg("x"), py::arg("y"), py::arg("size"), py::arg("pre"), py::arg("alpha"),
       py::arg("beta"), py::arg("k"));
    m.def(bwd_name, [bwd](const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                          int size, int pre, double alpha, double beta, double k, float beta_acc) {
        const RnormParams p{size, pre, alpha, beta, k};
        py::gil_scoped_release release;
        bwd(x, y, dy, dx, p, beta_acc);
    }, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("size"), py::arg("pre"),
       py::arg("alpha"), py::arg("beta"), py::arg("k"), py::arg("beta_acc") = 0.f);
}
}  // namespace

void bind_norm_pool_ops(py::module_& m) {
    m.def("lrn_forward", [](const Tensor& x, const Tensor& y, int size, int pre, bool blocked,
                            double alpha, double beta, double k) {
        const LrnParams p = lrn_params(size, pre, blocked, alpha, beta, k);
        py::gil_scoped_release release;
        lrn_forward(x, y, p);
    }, py::arg("x"), py::arg("y"), py::arg("size"), py::arg("pre"), py::arg("blocked"),
       py::arg("alpha"), py::arg("beta"), py::arg("k"));
    m.def("lrn_backward", [](const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                             int size, int pre, bool blocked, double alpha, double beta, double k,
                             float beta_acc) {
        const LrnParams p = lrn_params(size, pre, blocked, alpha, beta, k);
        py::gil_scoped_release release;
        lrn_backward(x, y, dy, dx, p, beta_acc);
    }, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("size"), py::arg("pre"),
       py::arg("blocked"), py::arg("alpha"), py::arg("beta"), py::arg("k"),
       py::arg("beta_acc") = 0.f);

    def_within_map(m, "rnorm_forward", "rnorm_backward", &rnorm_forward, &rnorm_backward);
    def_within_map(m, "cnorm_forward", "cnorm_backward", &cnorm_forward, &cnorm_backward);

    m.def("pool_output_size", &pool_output_size, py::arg("size"), py::arg("window"),
          py::arg("stride"), py::arg("start"), py::arg("outputs"));
    m.def("pool_forward", [](const Tensor& x, const Tensor& y, const std::string& mode, int size_h,
                             int size_w, int stride_h, int stride_w, int start_h, int start_w,
                             const std::optional<Tensor>& winners) {
        const PoolParams p =
            pool_params(mode, size_h, size_w, stride_h, stride_w, start_h, start_w);
        py::gil_scoped_release release;
        pool_forward(x, y, p, winners.value_or(Tensor()));
    }, py::arg("x"), py::arg("y"), py::arg("mode"), py::arg("size_h"), py::arg("size_w"),
       py::arg("stride_h"), py::arg("stride_w"), py::arg("start_h"), py::arg("start_w"),
       py::arg("winners") = py::none());
    m.def("pool_backward", [](const Tensor& x, const Tensor& y, const Tensor& dy, const Tensor& dx,
                              const std::string& mode, int size_h, int size_w, int stride_h,
                              int stride_w, int start_h, int start_w, float beta_acc,
                              const std::optional<Tensor>& winners) {
        const PoolParams p =
            pool_params(mode, size_h, size_w, stride_h, stride_w, start_h, start_w);
        py::gil_scoped_release release;
        pool_backward(x, y, dy, dx, p, beta_acc, winners.value_or(Tensor()));
    }, py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("mode"), py::arg("size_h"),
       py::arg("size_w"), py::arg("stride_h"), py::arg("stride_w"), py::arg("start_h"),
       py::arg("start_w"), py::arg("beta_acc") = 0.f, py::arg("winners") = py::none());
}

}  // namespace convnet::bindings
