// What only the emulated device's build binds: a way to launch the deliberately broken kernels
// of emu/selftest, so that tests can show the emulator's checks catching each mistake.
#include <pybind11/pybind11.h>

#include "bindings/families.h"
#include "core/tensor.h"

#if defined(CONVNET_EMU_SELFTEST)
#include "emu/selftest/broken_kernels.h"
#include "emu/src/access_checks.h"
#endif

namespace py = pybind11;

namespace convnet::bindings {

void bind_emulator(py::module_& m) {
#if defined(CONVNET_EMU_SELFTEST)
    m.def(
        "emu_broken_kernel",
        [](const std::string& name, const Tensor& mine, const Tensor& other, const Tensor& host) {
            const py::gil_scoped_release unlocked;
            emu::selftest::run_broken_kernel(name, static_cast<float*>(mine.raw()),
                                             static_cast<float*>(other.raw()),
                                             static_cast<float*>(host.raw()));
        },
        py::arg("name"), py::arg("mine"), py::arg("other"), py::arg("host"),
        "Emulated builds only: launch emu/selftest's kernel `name` on the current device "
        "(mine: 128 float32 there, other: 64 on another device, host: 64 on the CPU).");
    m.def("emu_access_checks", &emu::access_checks_enabled,
          "Emulated builds only: whether kernel memory accesses are checked (built with "
          "CONVNET_EMU_SANITIZE=CHECKS and CONVNET_EMU_CHECKS not 0).");
#else
    (void)m;
#endif
}

}  // namespace convnet::bindings
