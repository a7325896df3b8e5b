"""Sums across devices (csrc/comm/device_sum.cpp), the collective of replicated layers: every
part ends holding the sum in list order, through NCCL where every part is on a GPU and NCCL is
there (on the emulated build, the emulator's NCCL: emu/src/nccl.cpp), through host memory
otherwise (a CPU part); parts that differ, or two on one device, are errors. The float64 sums of
replicated CPU nets are in test_replicas.py."""

import subprocess
import sys

import numpy as np
import pytest

import convnet
from convnet import _core
from gpu_helpers import host

GPUS = convnet.cuda_device_count()


def test_one_part_stays_and_bad_parts_are_errors():
    a = np.arange(6, dtype=np.float64)
    t = convnet.Tensor.from_numpy(a.copy(), "cpu")
    assert _core.sum_across_devices([t]) == "local"
    np.testing.assert_array_equal(t.numpy(), a)
    with pytest.raises(ValueError, match="two parts on cpu"):
        _core.sum_across_devices([t, convnet.Tensor.from_numpy(a.copy(), "cpu")])
    with pytest.raises(ValueError, match="no tensors"):
        _core.sum_across_devices([])


def test_nccl_status_says_why_not_or_nothing():
    status = _core.nccl_status()
    assert isinstance(status, str)
    if not convnet.built_with_cuda():
        assert "no CUDA" in status


def _nccl_wheel():
    try:
        import nvidia.nccl  # noqa: F401
        return True
    except ImportError:
        return False


@pytest.mark.skipif(not (convnet.built_with_cuda() and _nccl_wheel()),
                    reason='needs a CUDA build and pip install ".[nccl]"')
def test_the_wheel_s_nccl_is_found_and_has_every_call():
    # In a fresh process: the library is opened once, at first use.
    script = ("from convnet import _core, replicas\n"
              "replicas.use_wheel_nccl()\n"
              "print(repr(_core.nccl_status()))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "''", run.stdout


@pytest.mark.skipif(not convnet.built_with_cuda() or hasattr(_core, "emu_access_checks"),
                    reason="needs a real CUDA build (the emulated one has its own NCCL)")
def test_a_library_named_after_a_miss_is_tried():
    # In a fresh process: the first use opens libnccl.so.2; where that misses, naming another
    # file opens that one, instead of keeping the miss for the process's life.
    script = ("from convnet import _core\n"
              "print(repr(_core.nccl_status()))\n"
              "_core.set_nccl_library('/nonexistent/libnccl.so.2')\n"
              "print(repr(_core.nccl_status()))\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    first, then = run.stdout.splitlines()
    if first == "''":
        pytest.skip("libnccl.so.2 is on the library path: no miss to try again")
    assert "libnccl.so.2" in first and "/nonexistent/libnccl.so.2" in then, (first, then)


@pytest.mark.gpu
@pytest.mark.skipif(GPUS < 2, reason="needs two GPUs")
def test_parts_on_two_gpus_end_holding_the_sum(rng):
    a, b = (rng.standard_normal((3, 1001)).astype(np.float32) for _ in range(2))
    parts = [convnet.Tensor.from_numpy(a, "cuda:0"), convnet.Tensor.from_numpy(b, "cuda:1")]
    path = _core.sum_across_devices(parts)
    assert path == ("nccl" if _core.nccl_status() == "" else "host")
    for t in parts:   # a + b in one float addition: the same bits on both devices
        np.testing.assert_array_equal(host(t), a + b)
    # A CPU part takes the host path.
    mixed = [convnet.Tensor.from_numpy(a, "cpu"), convnet.Tensor.from_numpy(b, "cuda:1")]
    assert _core.sum_across_devices(mixed) == "host"
    np.testing.assert_array_equal(host(mixed[1]), a + b)
    np.testing.assert_array_equal(mixed[0].numpy(), a + b)
    with pytest.raises(ValueError, match="differ in size or type"):
        _core.sum_across_devices([parts[0], convnet.Tensor.from_numpy(a[:1], "cuda:1")])
