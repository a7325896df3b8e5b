// numpy <-> Tensor conversions shared by the binding files (see convert.h).
#include "bindings/convert.h"

#include <string>

namespace py = pybind11;

namespace convnet::bindings {

Tensor borrow(const py::array& a, const char* op, const char* name, bool writeable) {
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
                                const char* name) {
    std::vector<Tensor> out;
    for (std::size_t i = 0; i < arrays.size(); ++i) {
        const std::string label = std::string(name) + "[" + std::to_string(i) + "]";
        out.push_back(borrow(arrays[i], op, label.c_str()));
    }
    return out;
}

py::array tensor_to_numpy(const Tensor& t) {
    CONVNET_ARG_CHECK(t.device().is_cpu(), "Tensor.numpy: the tensor is on ", t.device().str(),
                      "; copy it with .to('cpu') first");
    auto* keep = new Tensor(t);
    py::capsule owner(keep, [](void* p) { delete static_cast<Tensor*>(p); });
    std::vector<py::ssize_t> shape(t.shape().begin(), t.shape().end());
    if (t.dtype() == DType::f32) return py::array_t<float>(shape, t.data<float>(), owner);
    return py::array_t<double>(shape, t.data<double>(), owner);
}

}  // namespace convnet::bindings
