"""Zero-copy exchange with other array libraries: DLPack both ways on the CPU (numpy), and on
the GPU with PyTorch or CuPy where they and a GPU are present (DLPack and
__cuda_array_interface__)."""

import gc

import numpy as np
import pytest

import convnet
from gpu_helpers import EMULATED


def test_export_to_numpy_shares_memory_and_outlives_the_tensor():
    t = convnet.Tensor.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
    a = np.from_dlpack(t)
    assert a.shape == (2, 3) and a.dtype == np.float32
    t.numpy()[1, 2] = 42.0          # written through our side, seen through numpy's
    assert a[1, 2] == 42.0
    del t
    gc.collect()
    assert a.sum() == 0 + 1 + 2 + 3 + 4 + 42


def test_import_from_numpy_shares_memory_and_keeps_the_source_alive():
    src = np.arange(4, dtype=np.float64)
    t = convnet.Tensor.from_dlpack(src)
    assert t.dtype == "float64" and str(t.device) == "cpu" and t.shape == (4,)
    src[1] = 7.0
    del src
    gc.collect()
    np.testing.assert_array_equal(t.numpy(), [0, 7, 2, 3])


def test_imported_tensors_feed_the_ops():
    x = np.random.default_rng(0).standard_normal((2, 3, 5, 5)).astype(np.float32)
    t = convnet.Tensor.from_dlpack(x)
    y = convnet.Tensor.zeros([2, 3, 5, 5])
    convnet._core.neuron_forward(t, y, "relu", 0.0, 0.0)
    np.testing.assert_array_equal(y.numpy(), np.maximum(x, 0))


@pytest.mark.parametrize("array, message", [
    (np.arange(4), "only float32 and float64"),
    (np.ones((4, 4), np.float32)[:, ::2], "not C-contiguous"),
    ([1.0, 2.0], "no __dlpack__"),
])
def test_unshareable_arrays_are_clear_errors(array, message):
    with pytest.raises(ValueError, match=message):
        convnet.Tensor.from_dlpack(array)


def test_cpu_tensors_have_no_cuda_array_interface():
    t = convnet.Tensor.zeros([3])
    assert not hasattr(t, "__cuda_array_interface__")
    assert t.__dlpack_device__() == (1, 0)


def _gpu_library():
    try:
        import torch
        if torch.cuda.is_available():
            return "torch", torch
    except ImportError:
        pass
    try:
        import cupy
        return "cupy", cupy
    except ImportError:
        return None, None


@pytest.mark.gpu
def test_gpu_exchange_with_torch_or_cupy():
    name, lib = _gpu_library()
    if lib is None:
        pytest.skip("needs PyTorch with CUDA or CuPy")
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    ours = convnet.Tensor.from_numpy(x, "cuda:0")
    theirs = lib.from_dlpack(ours)                 # export, zero-copy
    back = convnet.Tensor.from_dlpack(theirs)      # import, zero-copy
    assert back.device == ours.device
    y = convnet.Tensor.zeros([3, 4], "float32", "cuda:0")
    convnet._core.neuron_forward(back, y, "square", 0.0, 0.0)
    np.testing.assert_array_equal(y.to("cpu").numpy(), x * x)
    cai = ours.__cuda_array_interface__
    assert cai["shape"] == (3, 4) and cai["typestr"] == "<f4" and cai["version"] == 3
    via_cai = convnet.Tensor.from_cuda_array(theirs)
    np.testing.assert_array_equal(via_cai.to("cpu").numpy(), x)


def _gpus():
    return ["cuda:0", "cuda:1"] if convnet.cuda_device_count() > 1 else ["cuda:0"]


def _stream_on(device):
    return convnet._core.cuda_stream_create(int(device.split(":")[1]))


@pytest.mark.gpu
def test_dlpack_export_honours_the_consumers_stream():
    """DLPack's stream argument: None and 1 (the legacy default stream our kernels use), 2 (the
    per-thread default stream), -1 (no synchronisation) and a stream handle of either GPU are
    taken; 0 is ambiguous and refused."""
    t = convnet.Tensor.from_numpy(np.arange(3, dtype=np.float32), "cuda:0")
    streams = [_stream_on(d) for d in _gpus()]
    for stream in [None, 1, 2, -1] + streams:
        capsule = t.__dlpack__(stream=stream)
        assert type(capsule).__name__ == "PyCapsule"
    with pytest.raises(ValueError, match="stream 0 is ambiguous"):
        t.__dlpack__(stream=0)
    with pytest.raises(ValueError, match="not a CUDA stream"):
        t.__dlpack__(stream=-3)
    for s in streams:
        convnet._core.cuda_stream_destroy(s)


@pytest.mark.gpu
@pytest.mark.skipif(not EMULATED, reason="a destroyed stream is undefined behaviour on a GPU")
def test_dlpack_export_to_a_destroyed_stream_is_an_error():
    t = convnet.Tensor.from_numpy(np.arange(3, dtype=np.float32), "cuda:0")
    s = _stream_on("cuda:0")
    convnet._core.cuda_stream_destroy(s)
    with pytest.raises(ValueError, match=f"stream {s} is not a live CUDA stream"):
        t.__dlpack__(stream=s)


class _CudaArray:
    """Only __cuda_array_interface__: no device attribute to go by."""

    def __init__(self, interface):
        self.__cuda_array_interface__ = interface


@pytest.mark.gpu
@pytest.mark.parametrize("device", _gpus())
def test_from_cuda_array_takes_the_device_from_the_pointer(device):
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    ours = convnet.Tensor.from_numpy(x, device)
    back = convnet.Tensor.from_cuda_array(_CudaArray(ours.__cuda_array_interface__))
    assert str(back.device) == device
    np.testing.assert_array_equal(back.to("cpu").numpy(), x)


@pytest.mark.gpu
def test_from_cuda_array_refuses_host_memory():
    host = np.zeros(4, np.float32)
    fake = _CudaArray({"shape": (4,), "typestr": "<f4", "data": (host.ctypes.data, False),
                       "version": 3})
    with pytest.raises(ValueError, match="is not CUDA device memory"):
        convnet.Tensor.from_cuda_array(fake)
