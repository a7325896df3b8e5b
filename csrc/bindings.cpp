// convnet._core, the pybind11 module over the C++ core (api.h). The bindings only convert
// arguments, check what memory safety needs, release the GIL and call the core; argument checks
// with friendly messages and output allocation live in convnet/ops (numpy in and out). Each
// family is bound by its own file in bindings/; src/convnet/_core.pyi is the module's stub.
#include <pybind11/pybind11.h>

#include "bindings/families.h"

namespace py = pybind11;

PYBIND11_MODULE(_core, m) {
    m.doc() = "convnet's C++ core: tensors, devices, the net and the CPU/CUDA ops "
              "(see convnet.ops)";
    using namespace convnet::bindings;
    bind_core(m);  // first: the ops' signatures name its Tensor
    bind_interop(m);
    bind_net(m);
    bind_between_devices(m);
    bind_gemm_conv_ops(m);
    bind_neuron_eltwise_ops(m);
    bind_norm_pool_ops(m);
    bind_dropout_softmax_sgd_ops(m);
    bind_emulator(m);
}
