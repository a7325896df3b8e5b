// Dropout, softmax with the log-losses, and the SGD update over tensors (CPU or CUDA): convert,
// release the GIL, call the op; no logic lives here. Backward forms take beta (0 overwrites,
// 1 accumulates). Labels are int32 numpy arrays (tensors hold floats only) and stay in host
// memory for every device: the ops copy them where they need them.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>

#include "api.h"
#include "bindings/convert.h"
#include "bindings/families.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {
using Labels = py::array_t<std::int32_t, py::array::c_style>;

DropoutParams dropout_params(double p, std::uint64_t seed, std::uint64_t step,
                             std::uint32_t layer, bool train, bool inverted,
                             std::uint64_t offset) {
    return DropoutParams{p, seed, step, layer, train, inverted, offset};
}

// The labels' memory, once their shape is known to match the scores' rows.
const std::int32_t* labels_for(const Labels& labels, const Tensor& scores, const char* op) {
    CONVNET_ARG_CHECK(scores.ndim() == 2 && labels.ndim() == 1 && labels.shape(0) == scores.dim(0),
                      op, ": labels must have shape (N,) for scores of shape ",
                      shape_str(scores.shape()));
    return labels.data();
}

// (loss, top1_errors, topk_errors) of a log-loss computed without the GIL.
template <typename Compute>
py::tuple loss_without_gil(Compute compute) {
    LogLossResult r;
    {
        py::gil_scoped_release release;
        r = compute();
    }
    return py::make_tuple(r.loss, r.top1_errors, r.topk_errors);
}

void bind_dropout(py::module_& m) {
    // The keep mask (one byte per element, 1 = kept) in the first n bytes of `bytes`' storage,
    // whatever its dtype: tensors hold floats, so a float tensor of ceil(n / 4) elements.
    m.def("dropout_mask", [](const Tensor& bytes, std::int64_t n, double p, std::uint64_t seed,
                             std::uint64_t step, std::uint32_t layer, std::uint64_t offset) {
        const DropoutParams params = dropout_params(p, seed, step, layer, true, false, offset);
        py::gil_scoped_release release;
        dropout_mask_into(bytes, n, params);
    }, py::arg("bytes"), py::arg("n"), py::arg("p"), py::arg("seed"), py::arg("step"),
       py::arg("layer"), py::arg("offset") = 0);
    m.def("dropout_forward", [](const Tensor& x, const Tensor& y, double p, std::uint64_t seed,
                                std::uint64_t step, std::uint32_t layer, bool train,
                                bool inverted, std::uint64_t offset) {
        const DropoutParams params = dropout_params(p, seed, step, layer, train, inverted, offset);
        py::gil_scoped_release release;
        dropout_forward(x, y, params);
    }, py::arg("x"), py::arg("y"), py::arg("p"), py::arg("seed"), py::arg("step"),
       py::arg("layer"), py::arg("train"), py::arg("inverted"), py::arg("offset") = 0);
    m.def("dropout_backward", [](const Tensor& dy, const Tensor& dx, double p, std::uint64_t seed,
                                 std::uint64_t step, std::uint32_t layer, bool train,
                                 bool inverted, float beta, std::uint64_t offset) {
        const DropoutParams params = dropout_params(p, seed, step, layer, train, inverted, offset);
        py::gil_scoped_release release;
        dropout_backward(dy, dx, params, beta);
    }, py::arg("dy"), py::arg("dx"), py::arg("p"), py::arg("seed"), py::arg("step"),
       py::arg("layer"), py::arg("train"), py::arg("inverted"), py::arg("beta") = 0.f,
       py::arg("offset") = 0);
}

void bind_softmax(py::module_& m) {
    m.def("softmax_forward", [](const Tensor& x, const Tensor& probs) {
        py::gil_scoped_release release;
        softmax_forward(x, probs);
    }, py::arg("x"), py::arg("probs"));
    m.def("softmax_backward", [](const Tensor& y, const Tensor& dy, const Tensor& dx, float beta) {
        py::gil_scoped_release release;
        softmax_backward(y, dy, dx, beta);
    }, py::arg("y"), py::arg("dy"), py::arg("dx"), py::arg("beta") = 0.f);
    m.def("softmax_logloss", [](const Tensor& x, const Labels& labels, const Tensor& probs,
                                const std::optional<Tensor>& dx, int topk) {
        const std::int32_t* lab = labels_for(labels, x, "softmax_logloss");
        const Tensor tdx = or_undefined(dx);
        return loss_without_gil([&] { return softmax_logloss(x, lab, probs, tdx, topk); });
    }, py::arg("x"), py::arg("labels"), py::arg("probs"), py::arg("dx"), py::arg("topk"));
    m.def("logreg_cost", [](const Tensor& probs, const Labels& labels,
                            const std::optional<Tensor>& dprobs, double scale, int topk,
                            float beta) {
        const std::int32_t* lab = labels_for(labels, probs, "logreg_cost");
        const Tensor tdp = or_undefined(dprobs);
        return loss_without_gil([&] { return logreg_cost(probs, lab, tdp, scale, topk, beta); });
    }, py::arg("probs"), py::arg("labels"), py::arg("dprobs"), py::arg("scale"), py::arg("topk"),
       py::arg("beta") = 0.f);
}
}  // namespace

void bind_dropout_softmax_sgd_ops(py::module_& m) {
    bind_dropout(m);
    bind_softmax(m);
    m.def("sgd_update", [](const Tensor& w, const Tensor& grad, const Tensor& v, double eps,
                           double mom, double wc) {
        py::gil_scoped_release release;
        sgd_update(w, grad, v, SgdParams{eps, mom, wc});
    }, py::arg("w"), py::arg("grad"), py::arg("v"), py::arg("eps"), py::arg("mom"),
       py::arg("wc"));
}

}  // namespace convnet::bindings
