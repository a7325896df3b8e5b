"""Between GPUs and on streams: peer access queries, the runtime's checks of streams and peer
copies (on the emulated device, whose every call validates its handles and devices as CUDA does:
a misused stream or copy is an error there, where a real GPU might crash or go silently wrong),
and the answers without a GPU."""

import numpy as np
import pytest

import convnet
from convnet import _core
from gpu_helpers import EMULATED

needs_gpu = pytest.mark.gpu
emulated_only = pytest.mark.skipif(not EMULATED, reason="checks of the emulated runtime")
two_gpus = pytest.mark.skipif(convnet.cuda_device_count() < 2, reason="needs two GPUs")


def on(device, values):
    return convnet.Tensor.from_numpy(np.asarray(values, np.float32), device)


def pointer(t):
    return t.__cuda_array_interface__["data"][0]


@pytest.mark.skipif(convnet.built_with_cuda(), reason="checks the build without CUDA")
def test_without_cuda_no_device_has_peers():
    with pytest.raises(ValueError, match="no CUDA"):
        convnet.can_access_peer("cuda:0", "cuda:1")


@needs_gpu
def test_can_access_peer_answers_for_real_devices_only():
    assert convnet.can_access_peer("cuda:0", 0) is False  # a device is not its own peer
    n = convnet.cuda_device_count()
    with pytest.raises(ValueError, match=f"cuda:{n} does not exist"):
        convnet.can_access_peer(0, n)
    with pytest.raises(ValueError, match="not a GPU"):
        convnet.can_access_peer("cpu", 0)


@needs_gpu
def test_a_kernel_runs_on_a_stream_of_its_device():
    s = _core.cuda_stream_create(0)
    x, out = on("cuda:0", [1, -2, 3]), on("cuda:0", [np.nan] * 3)
    _core.cuda_double_on_stream(x, out, s)
    np.testing.assert_array_equal(out.to("cpu").numpy(), [2, -4, 6])
    _core.cuda_stream_destroy(s)


@needs_gpu
@emulated_only
@two_gpus
def test_a_kernel_on_another_devices_stream_is_an_error():
    s = _core.cuda_stream_create(1)
    x, out = on("cuda:0", [1, 2]), on("cuda:0", [0, 0])
    with pytest.raises(convnet.Error, match=r"kernel scale_kernel.* stream of cuda:1 while "
                                            r"cuda:0 is current"):
        _core.cuda_double_on_stream(x, out, s)
    _core.cuda_stream_destroy(s)


@needs_gpu
@emulated_only
def test_a_destroyed_stream_is_an_error():
    s = _core.cuda_stream_create(0)
    _core.cuda_stream_destroy(s)
    x, out = on("cuda:0", [1, 2]), on("cuda:0", [0, 0])
    with pytest.raises(convnet.Error, match="scale_kernel.* destroyed or was never created"):
        _core.cuda_double_on_stream(x, out, s)
    with pytest.raises(ValueError, match="cannot destroy stream .*CUDA error 400"):
        _core.cuda_stream_destroy(s)
    with pytest.raises(ValueError, match="cannot destroy stream 1:"):
        _core.cuda_stream_destroy(1)  # the legacy default stream is not ours to end


@needs_gpu
@two_gpus
def test_peer_copy_between_blocks_of_the_named_devices():
    src, dst = on("cuda:1", [1, 2, 3, 4]), on("cuda:0", [0, 0, 0, 0])
    _core.cuda_memcpy_peer(pointer(dst), 0, pointer(src), 1, 16)
    np.testing.assert_array_equal(dst.to("cpu").numpy(), [1, 2, 3, 4])


@needs_gpu
@emulated_only
@two_gpus
def test_peer_copy_checks_devices_and_bounds():
    src, dst = on("cuda:1", [1, 2, 3, 4]), on("cuda:0", [0, 0, 0, 0])
    host = np.zeros(4, np.float32)
    refused = r"cudaMemcpyPeerAsync .*CUDA error 1\)"  # cudaErrorInvalidValue
    with pytest.raises(ValueError, match=refused):      # the source named on the wrong device
        _core.cuda_memcpy_peer(pointer(dst), 0, pointer(src), 0, 16)
    with pytest.raises(ValueError, match=refused):      # past the end of both blocks
        _core.cuda_memcpy_peer(pointer(dst), 0, pointer(src), 1, 1 << 34)
    with pytest.raises(ValueError, match=refused):      # host memory is no device's
        _core.cuda_memcpy_peer(host.ctypes.data, 0, pointer(src), 1, 16)
    with pytest.raises(ValueError, match="cuda:7 does not exist"):
        _core.cuda_memcpy_peer(pointer(dst), 7, pointer(src), 1, 16)
    np.testing.assert_array_equal(dst.to("cpu").numpy(), [0, 0, 0, 0])


@needs_gpu
@two_gpus
def test_ops_on_the_second_device_launch_there():
    # With cuda:0 current, ops on cuda:1 tensors must make cuda:1 current for their launches
    # (the dispatch's device guard). A fresh process, so that no earlier net has enabled peer
    # access, which would let a kernel on cuda:0 read cuda:1's memory and hide a missing guard.
    import subprocess
    import sys
    import textwrap
    code = textwrap.dedent("""
        import numpy as np, convnet
        from convnet import _core, ops
        rng = np.random.default_rng(0)
        x = rng.standard_normal((5, 3, 9, 7)).astype(np.float32)
        w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
        want = ops.conv_forward(x, w, padding=1)
        tx, tw = (convnet.Tensor.from_numpy(a, "cuda:1") for a in (x, w))
        ty = convnet.Tensor.zeros(list(want.shape), "float32", "cuda:1")
        _core.conv_forward(tx, tw, None, ty, 1, 1, 1, 1, 1)
        got = ty.to("cpu").numpy()
        assert np.abs(got - want).max() <= 1e-4 * np.abs(want).max(), "wrong values"
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["ok"], done.stderr[-2000:]
