// Tensor forms of the elementwise ops for device tensors (the GPU tests call these): check,
// release the GIL, call the op. No logic beyond conversion lives here. They take CPU tensors
// too, which runs the CPU path through the same dispatch (the GPU tests' comparison).
// Functions: dropout_{mask,forward,backward}_tensor, softmax_{forward,backward,logloss}_tensor,
// logreg_cost_tensor, sgd_update_tensor, eltsum_{forward,backward}_tensor,
// eltmax_{forward,backward}_tensor, scale_tensor, bias_add_{forward,backward}_tensor,
// concat_{forward,backward}_tensor. Backward forms take beta (0 overwrites, 1 accumulates).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "api.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {

using Tensors = std::vector<Tensor>;
using Labels = py::array_t<std::int32_t, py::array::c_style>;

// Mirrors the static helper of bindings.cpp.
DropoutParams dropout_params(double p, std::uint64_t seed, std::uint64_t step,
                             std::uint32_t layer, bool train, bool inverted) {
    return DropoutParams{p, seed, step, layer, train, inverted};
}

// Labels stay in host memory for every device (the ops copy them where they need them).
const std::int32_t* labels_for(const Labels& labels, const Tensor& scores, const char* op) {
    CONVNET_ARG_CHECK(scores.ndim() == 2 && labels.ndim() == 1 && labels.shape(0) == scores.dim(0),
                      op, ": labels must have shape (N,) for scores of shape ",
                      shape_str(scores.shape()));
    return labels.data();
}

Tensor or_undefined(const std::optional<Tensor>& t) { return t ? *t : Tensor(); }

}  // namespace

void bind_elementwise_tensor_ops(py::module_& m) {
    // ---- dropout -------------------------------------------------------------------------------
    m.def("dropout_mask_tensor", [](const Tensor& bytes, std::int64_t n, double p,
                                    std::uint64_t seed, std::uint64_t step, std::uint32_t layer) {
        const DropoutParams params = dropout_params(p, seed, step, layer, true, false);
        py::gil_scoped_release release;
        dropout_mask_into(bytes, n, params);
    }, py::arg("bytes"), py::arg("n"), py::arg("p"), py::arg("seed"), py::arg("step"),
       py::arg("layer"));
    m.def("dropout_forward_tensor", [](const Tensor& x, const Tensor& y, double p,
                                       std::uint64_t seed, std::uint64_t step,
                                       std::uint32_t layer, bool train, bool inverted) {
        const DropoutParams params = dropout_params(p, seed, step, layer, train, inverted);
        py::gil_scoped_release release;
        dropout_forward(x, y, params);
    }, py::arg("x"), py::arg("y"), py::arg("p"), py::arg("seed"), py::arg("step"),
       py::arg("layer"), py::arg("train"), py::arg("inverted"));
    m.def("dropout_backward_tensor", [](const Tensor& dy, const Tensor& dx, double p,
                                        std::uint64_t seed, std::uint64_t step,
                                        std::uint32_t layer, bool train, bool inverted,
                                        float beta) {
        const DropoutParams params = dropout_params(p, seed, step, layer, train, inverted);
        py::gil_scoped_release release;
        dropout_backward(dy, dx, params, beta);
    }, py::arg("dy"), py::arg("dx"), py::arg("p"), py::arg("seed"), py::arg("step"),
       py::arg("layer"), py::arg("train"), py::arg("inverted"), py::arg("beta") = 0.f);

    // ---- softmax and the log-losses ------------------------------------------------------------
    m.def("softmax_forward_tensor", [](const Tensor& x, const Tensor& probs) {
        py::gil_scoped_release release;
        softmax_forward(x, probs);
    }, py::arg("x"), py::arg("probs"));
    m.def("softmax_backward_tensor", [](const Tensor& y, const Tensor& dy, const Tensor& dx,
                                        float beta) {
        py::gil_scoped_release release;
        softmax_backward(y, dy, dx, beta);
    }, py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("beta") = 0.f);
    // Returns (loss, top1_errors, topk_errors).
    m.def("softmax_logloss_tensor", [](const Tensor& x, const Labels& labels, const Tensor& probs,
                                       const std::optional<Tensor>& dx, int topk) {
        const std::int32_t* lab = labels_for(labels, x, "softmax_logloss");
        const Tensor tdx = or_undefined(dx);
        LogLossResult r;
        {
            py::gil_scoped_release release;
            r = softmax_logloss(x, lab, probs, tdx, topk);
        }
        return py::make_tuple(r.loss, r.top1_errors, r.topk_errors);
    }, py::arg("x"), py::arg("labels"), py::arg("probs"), py::arg("dx"), py::arg("topk"));
    m.def("logreg_cost_tensor", [](const Tensor& probs, const Labels& labels,
                                   const std::optional<Tensor>& dprobs, double scale, int topk,
                                   float beta) {
        const std::int32_t* lab = labels_for(labels, probs, "logreg_cost");
        const Tensor tdp = or_undefined(dprobs);
        LogLossResult r;
        {
            py::gil_scoped_release release;
            r = logreg_cost(probs, lab, tdp, scale, topk, beta);
        }
        return py::make_tuple(r.loss, r.top1_errors, r.topk_errors);
    }, py::arg("probs"), py::arg("labels"), py::arg("dprobs"), py::arg("scale"), py::arg("topk"),
       py::arg("beta") = 0.f);

    // ---- SGD ---------------------------------------------------------------------------------
    m.def("sgd_update_tensor", [](const Tensor& w, const Tensor& grad, const Tensor& v, double eps,
                                  double mom, double wc) {
        py::gil_scoped_release release;
        sgd_update(w, grad, v, SgdParams{eps, mom, wc});
    }, py::arg("w"), py::arg("grad"), py::arg("v"), py::arg("eps"), py::arg("mom"),
       py::arg("wc"));

    // ---- eltsum, eltmax, scale ---------------------------------------------------------------
    m.def("eltsum_forward_tensor", [](const Tensors& xs, const std::vector<double>& coeffs,
                                      const Tensor& y) {
        py::gil_scoped_release release;
        eltsum_forward(xs, coeffs, y);
    }, py::arg("xs"), py::arg("coeffs"), py::arg("y"));
    m.def("eltsum_backward_tensor", [](const Tensor& dy, const std::vector<double>& coeffs,
                                       const Tensors& dxs, float beta) {
        py::gil_scoped_release release;
        eltsum_backward(dy, coeffs, dxs, beta);
    }, py::arg("dy"), py::arg("coeffs"), py::arg("dxs"), py::arg("beta") = 0.f);
    m.def("eltmax_forward_tensor", [](const Tensors& xs, const Tensor& y) {
        py::gil_scoped_release release;
        eltmax_forward(xs, y);
    }, py::arg("xs"), py::arg("y"));
    m.def("eltmax_backward_tensor", [](const Tensors& xs, const Tensor& y, const Tensor& dy,
                                       const Tensors& dxs, float beta) {
        py::gil_scoped_release release;
        eltmax_backward(xs, y, dy, dxs, beta);
    }, py::arg("xs"), py::arg("y"), py::arg("dy"), py::arg("dxs"), py::arg("beta") = 0.f);
    m.def("scale_tensor", [](const Tensor& in, double c, const Tensor& out, float beta) {
        py::gil_scoped_release release;
        eltwise_scale(in, c, out, beta);
    }, py::arg("input"), py::arg("c"), py::arg("out"), py::arg("beta") = 0.f);

    // ---- bias_add, concat ----------------------------------------------------------------------
    m.def("bias_add_forward_tensor", [](const Tensor& y, const Tensor& b) {
        py::gil_scoped_release release;
        bias_add_forward(y, b);
    }, py::arg("y"), py::arg("b"));
    m.def("bias_add_backward_tensor", [](const Tensor& dy, const Tensor& db, float beta) {
        py::gil_scoped_release release;
        bias_add_backward(dy, db, beta);
    }, py::arg("dy"), py::arg("db"), py::arg("beta") = 0.f);
    m.def("concat_forward_tensor", [](const Tensors& xs, const Tensor& y) {
        py::gil_scoped_release release;
        concat_forward(xs, y);
    }, py::arg("xs"), py::arg("y"));
    m.def("concat_backward_tensor", [](const Tensor& dy, const Tensors& dxs, float beta) {
        py::gil_scoped_release release;
        concat_backward(dy, dxs, beta);
    }, py::arg("dy"), py::arg("dxs"), py::arg("beta") = 0.f);
}

}  // namespace convnet::bindings
