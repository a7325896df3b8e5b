// Between devices: sums across devices and between ranks (every build; NCCL where there are GPUs
// and the library), and, on CUDA builds, whether two GPUs can reach each other, which path the
// copies took, and streams of our own for the tests of the stream checks.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>

#include "api.h"
#include "bindings/families.h"
#include "comm/device_sum.h"
#include "comm/nccl.h"
#include "comm/rank_sum.h"
#include "core/cuda_runtime.h"
#include "ops/eltwise.h"

namespace py = pybind11;

namespace convnet::bindings {

void bind_between_devices(py::module_& m) {
    m.def("sum_across_devices", [](const std::vector<Tensor>& parts) {
        py::gil_scoped_release release;
        return sum_across_devices(parts);
    }, py::arg("parts"));
    // "" where NCCL can be used, else why not.
    m.def("nccl_status", [] {
        std::string why_not;
        return nccl::api(&why_not) ? std::string() : why_not;
    });
    m.def("set_nccl_library", &nccl::set_library, py::arg("path"));
    m.def("nccl_unique_id", [] { return py::bytes(nccl_unique_id()); });
    py::class_<NcclRanks>(m, "NcclRanks")
        .def(py::init([](const py::bytes& id, int nranks, int rank, int device) {
                 const std::string bytes = id;
                 py::gil_scoped_release release;   // returns when every rank has joined
                 return std::make_unique<NcclRanks>(bytes, nranks, rank, device);
             }),
             py::arg("id"), py::arg("nranks"), py::arg("rank"), py::arg("device"))
        .def_property_readonly("device", &NcclRanks::device)
        .def("ready", &NcclRanks::ready, py::arg("tensors"), py::arg("scale"))
        .def("sum", &NcclRanks::sum, py::arg("tensors"),
             py::call_guard<py::gil_scoped_release>())
        .def("abort", &NcclRanks::abort);
#ifdef CONVNET_WITH_CUDA
    m.def("cuda_can_access_peer", &cuda::can_access_peer, py::arg("device"), py::arg("peer"));
    m.def("cuda_copy_counts", [] {
        const cuda::CopyCounts c = cuda::copy_counts();
        py::dict d;
        d["device"] = c.same_device, d["peer"] = c.peer, d["host"] = c.host;
        return d;
    });
    m.def("cuda_memcpy_peer", [](std::uintptr_t dst, int dst_device, std::uintptr_t src,
                                 int src_device, std::size_t bytes) {
        cuda::memcpy_peer(reinterpret_cast<void*>(dst), dst_device,
                          reinterpret_cast<const void*>(src), src_device, bytes);
    }, py::arg("dst"), py::arg("dst_device"), py::arg("src"), py::arg("src_device"),
       py::arg("bytes"));
    m.def("cuda_stream_create", &cuda::stream_create, py::arg("device"));
    m.def("cuda_stream_destroy", &cuda::stream_destroy, py::arg("stream"));
    // out = 2 * x by a kernel launched on `stream` with x's device current.
    m.def("cuda_double_on_stream", [](const Tensor& x, const Tensor& out, std::uintptr_t stream) {
        CONVNET_ARG_CHECK(x.device().is_cuda() && out.device() == x.device() &&
                              x.dtype() == DType::f32 && out.numel() == x.numel(),
                          "cuda_double_on_stream: two float32 tensors of one size on one GPU");
        py::gil_scoped_release release;
        const cuda::DeviceGuard on(x.device().index);
        scale_cuda(x.data<float>(), {2.0}, {out.data<float>()}, x.numel(), 0.f,
                   reinterpret_cast<void*>(stream));
    }, py::arg("x"), py::arg("out"), py::arg("stream"));
#endif
}

}  // namespace convnet::bindings
