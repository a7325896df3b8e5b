// Zero-copy exchange of tensors with other array libraries: DLPack (`__dlpack__`,
// `__dlpack_device__`, `Tensor.from_dlpack`) on the CPU and the GPU, and CUDA's
// `__cuda_array_interface__` (version 3) for device tensors. Exported tensors keep our storage
// alive through the consumer's deleter; imported ones keep the producer's object alive until our
// last reference goes. Our tensors are contiguous, so only compact C-order arrays come in.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "api.h"
#include "bindings/families.h"
#include "core/cuda_runtime.h"

namespace py = pybind11;

namespace convnet::bindings {

namespace {
// The DLPack ABI (dlpack.h, version 0.8 and later): plain C structs, declared here so that the
// build needs no extra header.
enum DLDeviceType : std::int32_t { kDLCPU = 1, kDLCUDA = 2, kDLCUDAHost = 3 };
struct DLDevice {
    std::int32_t device_type;
    std::int32_t device_id;
};
struct DLDataType {
    std::uint8_t code;  // 2: float
    std::uint8_t bits;
    std::uint16_t lanes;
};
struct DLTensor {
    void* data;
    DLDevice device;
    std::int32_t ndim;
    DLDataType dtype;
    std::int64_t* shape;
    std::int64_t* strides;  // null: compact C order
    std::uint64_t byte_offset;
};
struct DLManagedTensor {
    DLTensor dl_tensor;
    void* manager_ctx;
    void (*deleter)(DLManagedTensor* self);
};

constexpr std::uint8_t kDLFloat = 2;
constexpr const char* kCapsuleName = "dltensor";
constexpr const char* kUsedCapsuleName = "used_dltensor";

// What an exported DLManagedTensor owns: a reference to our storage and the shape array.
struct Export {
    Tensor tensor;
    std::vector<std::int64_t> shape;
    DLManagedTensor managed{};
};

void delete_export(DLManagedTensor* self) { delete static_cast<Export*>(self->manager_ctx); }

py::capsule to_dlpack(const Tensor& t) {
    auto* e = new Export{t, t.shape(), {}};
    DLTensor& d = e->managed.dl_tensor;
    d.data = t.raw();
    d.device = {t.device().is_cpu() ? kDLCPU : kDLCUDA, t.device().is_cpu() ? 0 : t.device().index};
    d.ndim = static_cast<std::int32_t>(e->shape.size());
    d.dtype = {kDLFloat, static_cast<std::uint8_t>(t.dtype() == DType::f32 ? 32 : 64), 1};
    d.shape = e->shape.data();
    d.strides = nullptr;
    d.byte_offset = 0;
    e->managed.manager_ctx = e;
    e->managed.deleter = &delete_export;
    // A capsule nobody consumed still owns the tensor; a consumer renames it and takes over.
    return py::capsule(&e->managed, kCapsuleName, [](PyObject* capsule) {
        if (PyCapsule_IsValid(capsule, kCapsuleName)) {
            auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
            if (m && m->deleter) m->deleter(m);
        }
    });
}

bool compact(const DLTensor& d) {
    if (!d.strides) return true;
    // An empty array has no element to misplace (numpy gives it arbitrary strides).
    for (int i = 0; i < d.ndim; ++i)
        if (d.shape[i] == 0) return true;
    std::int64_t expected = 1;
    for (int i = d.ndim - 1; i >= 0; --i) {
        if (d.shape[i] != 1 && d.strides[i] != expected) return false;
        expected *= d.shape[i];
    }
    return true;
}

Tensor from_dlpack(const py::object& source) {
    const char* op = "Tensor.from_dlpack";
    const py::object export_fn = py::getattr(source, "__dlpack__", py::none());
    CONVNET_ARG_CHECK(!export_fn.is_none(), op, ": the object has no __dlpack__");
    // CUDA producers order their work before ours on the legacy default stream (1), which is the
    // stream our kernels use.
    const py::tuple device = source.attr("__dlpack_device__")();
    const int device_type = device[0].cast<int>();
    py::object capsule_obj =
        device_type == kDLCUDA ? export_fn(py::arg("stream") = 1) : export_fn();
    PyObject* capsule = capsule_obj.ptr();
    CONVNET_ARG_CHECK(PyCapsule_IsValid(capsule, kCapsuleName), op,
                      ": __dlpack__ did not return an unconsumed 'dltensor' capsule");
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
    const DLTensor& d = m->dl_tensor;
    auto release = [m] {
        py::gil_scoped_acquire gil;  // producers' deleters drop Python references
        if (m->deleter) m->deleter(m);
    };
    const bool f32 = d.dtype.code == kDLFloat && d.dtype.bits == 32 && d.dtype.lanes == 1;
    const bool f64 = d.dtype.code == kDLFloat && d.dtype.bits == 64 && d.dtype.lanes == 1;
    const bool cpu = d.device.device_type == kDLCPU || d.device.device_type == kDLCUDAHost;
    const bool cuda = d.device.device_type == kDLCUDA;
    std::string problem;
    if (!f32 && !f64)
        problem = "only float32 and float64 arrays can be shared (got DLPack type code " +
                  std::to_string(d.dtype.code) + ", " + std::to_string(d.dtype.bits) + " bits)";
    else if (!cpu && !cuda)
        problem = "the array is on DLPack device type " + std::to_string(d.device.device_type) +
                  "; only CPU and CUDA memory can be shared";
    else if (!compact(d))
        problem = "the array is not C-contiguous; make a contiguous copy first";
    if (!problem.empty()) {
        PyCapsule_SetName(capsule, kUsedCapsuleName);  // we own it now: release it
        if (m->deleter) m->deleter(m);
        throw ArgumentError(std::string(op) + ": " + problem);
    }
    Shape shape(d.shape, d.shape + d.ndim);
    PyCapsule_SetName(capsule, kUsedCapsuleName);
    return Tensor::borrow(static_cast<char*>(d.data) + d.byte_offset, shape,
                          f32 ? DType::f32 : DType::f64,
                          cuda ? Device::cuda(d.device.device_id) : Device::cpu(), release);
}

// The GPU that holds `ptr`, or -1 for memory that is not a GPU's (and in a build without CUDA).
int pointer_device(const void* ptr) {
#ifdef CONVNET_WITH_CUDA
    return cuda::pointer_device(ptr);
#else
    (void)ptr;
    return -1;
#endif
}

// An empty array has no memory to ask about: its library's device attribute, else cuda:0.
int empty_array_device(const py::object& source) {
    if (!py::hasattr(source, "device")) return 0;
    const py::object dev = source.attr("device");
    if (py::hasattr(dev, "index") && !dev.attr("index").is_none())
        return dev.attr("index").cast<int>();
    return py::hasattr(dev, "id") ? dev.attr("id").cast<int>() : 0;
}

// DLPack's stream argument (the consumer's stream): the data must be ready on it. None and 1 are
// the legacy default stream, which our kernels use; -1 asks for no synchronisation; 2 is the
// per-thread default stream; anything else is a cudaStream_t. 0 is ambiguous and refused.
void ready_on_consumer_stream(const Tensor& t, const py::object& stream) {
    if (!t.device().is_cuda() || stream.is_none()) return;
    const long long s = stream.cast<long long>();
    CONVNET_ARG_CHECK(s != 0, "__dlpack__: stream 0 is ambiguous under DLPack; pass 1 for the "
                      "legacy default stream, 2 for the per-thread one, or a stream handle");
    CONVNET_ARG_CHECK(s >= -1, "__dlpack__: stream ", s, " is not a CUDA stream");
    if (s == -1 || s == 1) return;
#ifdef CONVNET_WITH_CUDA
    cuda::make_stream_wait_for(t.device().index, static_cast<std::uintptr_t>(s));
#endif
}

py::dict cuda_array_interface(const Tensor& t) {
    if (!t.device().is_cuda())
        throw py::attribute_error("__cuda_array_interface__: the tensor is on the CPU");
    py::dict d;
    d["shape"] = py::tuple(py::cast(t.shape()));
    d["typestr"] = t.dtype() == DType::f32 ? "<f4" : "<f8";
    d["data"] = py::make_tuple(reinterpret_cast<std::uintptr_t>(t.raw()), false);
    d["strides"] = py::none();
    d["version"] = 3;
    d["stream"] = 1;  // our kernels run on the legacy default stream
    return d;
}

Tensor from_cuda_array(const py::object& source) {
    const char* op = "Tensor.from_cuda_array";
    CONVNET_ARG_CHECK(py::hasattr(source, "__cuda_array_interface__"), op,
                      ": the object has no __cuda_array_interface__");
    const py::dict d = source.attr("__cuda_array_interface__");
    const std::string typestr = d["typestr"].cast<std::string>();
    CONVNET_ARG_CHECK(typestr == "<f4" || typestr == "<f8", op,
                      ": only float32 and float64 arrays can be shared, got ", typestr);
    Shape shape = d["shape"].cast<std::vector<std::int64_t>>();
    if (d.contains("strides") && !d["strides"].is_none()) {
        const auto strides = d["strides"].cast<std::vector<std::int64_t>>();
        std::int64_t expected = typestr == "<f4" ? 4 : 8;
        for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
            CONVNET_ARG_CHECK(shape[i] == 1 || strides[i] == expected, op,
                              ": the array is not C-contiguous; make a contiguous copy first");
            expected *= shape[i];
        }
    }
    const auto data = d["data"].cast<py::tuple>();
    auto* ptr = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
    std::int64_t numel = 1;
    for (auto n : shape) numel *= n;
    // The device that owns the memory, from the runtime; an empty array may have no pointer.
    const int device = numel == 0 ? empty_array_device(source) : pointer_device(ptr);
    CONVNET_ARG_CHECK(device >= 0, op, ": the data pointer ", ptr, " is not CUDA device memory");
    auto* keep = new py::object(source);
    return Tensor::borrow(ptr, shape, typestr == "<f4" ? DType::f32 : DType::f64,
                          Device::cuda(device), [keep] {
                              py::gil_scoped_acquire gil;
                              delete keep;
                          });
}
}  // namespace

void bind_interop(py::module_& m) {
    auto cls = py::reinterpret_borrow<py::object>(py::type::of<Tensor>());
    cls.attr("__dlpack__") = py::cpp_function(
        [](const Tensor& t, py::object stream, py::object max_version, py::object dl_device,
           py::object copy) {
            (void)max_version, (void)dl_device, (void)copy;
            ready_on_consumer_stream(t, stream);
            return to_dlpack(t);
        },
        py::name("__dlpack__"), py::is_method(cls), py::arg("stream") = py::none(),
        py::arg("max_version") = py::none(),
        py::arg("dl_device") = py::none(), py::arg("copy") = py::none(),
        "DLPack export (zero-copy): np.from_dlpack(t), torch.from_dlpack(t), cupy.from_dlpack(t)");
    cls.attr("__dlpack_device__") = py::cpp_function(
        [](const Tensor& t) {
            return py::make_tuple(t.device().is_cpu() ? int(kDLCPU) : int(kDLCUDA),
                                  t.device().is_cpu() ? 0 : t.device().index);
        },
        py::name("__dlpack_device__"), py::is_method(cls));
    cls.attr("__cuda_array_interface__") = py::reinterpret_borrow<py::object>(
        reinterpret_cast<PyObject*>(&PyProperty_Type))(py::cpp_function(&cuda_array_interface));
    cls.attr("from_dlpack") = py::reinterpret_borrow<py::object>(
        reinterpret_cast<PyObject*>(&PyStaticMethod_Type))(py::cpp_function(
        &from_dlpack, py::name("from_dlpack"), py::arg("array"),
        "A tensor sharing the memory of any DLPack producer (numpy, PyTorch, CuPy, JAX...)"));
    cls.attr("from_cuda_array") = py::reinterpret_borrow<py::object>(
        reinterpret_cast<PyObject*>(&PyStaticMethod_Type))(py::cpp_function(
        &from_cuda_array, py::name("from_cuda_array"), py::arg("array"),
        "A tensor sharing the memory of an object with __cuda_array_interface__"));
    (void)m;
}

}  // namespace convnet::bindings
