"""The emulated device's own checks (CONVNET_CUDA=EMU builds only): each deliberately broken kernel
of emu/selftest must stop with the error its mistake deserves, naming the kernel, and the correct
kernel beside it must run and compute the right thing. Plus what needs a fresh process: a device
pointer followed on the host faults with a message, and the compute capability is settable."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import convnet
from convnet import _core

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not hasattr(_core, "emu_broken_kernel"),
                       reason="the emulated device's build only (CONVNET_CUDA=EMU)"),
]

# Checks that need the kernels built with the access instrumentation (CONVNET_EMU_SANITIZE=CHECKS,
# the default) and not turned off with CONVNET_EMU_CHECKS=0.
needs_access_checks = pytest.mark.skipif(
    not (hasattr(_core, "emu_access_checks") and _core.emu_access_checks()),
    reason="kernel access checks are off (CONVNET_EMU_SANITIZE or CONVNET_EMU_CHECKS=0)")


def run(name, x=None):
    x = np.arange(64, dtype=np.float32) if x is None else x
    mine = convnet.Tensor.from_numpy(np.concatenate([x, np.full(64, np.nan, np.float32)]),
                                     "cuda:0")
    other = convnet.Tensor.from_numpy(x, "cuda:1")
    host = convnet.Tensor.from_numpy(x)
    _core.emu_broken_kernel(name, mine, other, host)
    return mine.to("cpu").numpy()[64:]


def fails(name, *fragments):
    with pytest.raises(convnet.Error) as caught:
        run(name)
    message = str(caught.value)
    assert "emulated device: kernel " in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_the_correct_kernel_runs():
    x = np.random.default_rng(0).standard_normal(64).astype(np.float32)
    np.testing.assert_array_equal(run("with_syncthreads", x), np.r_[x[0], x[:-1]])


@needs_access_checks
def test_a_missing_syncthreads_is_a_shared_memory_race():
    fails("missing_syncthreads", "neighbour_kernel<false>", "shared-memory race on static "
          "__shared__ memory", "thread (1,0,0) of block (0,0,0) reads it after thread (0,0,0)",
          "with no __syncthreads between")


@needs_access_checks
def test_two_threads_writing_one_shared_word_race():
    fails("same_shared_word", "same_word_kernel", "shared-memory race", "writes it after thread")


@needs_access_checks
def test_reading_shared_memory_nobody_wrote():
    fails("uninitialised_shared", "thread (1,0,0) of block (0,0,0) reads static __shared__",
          "before any thread of the block wrote it")


def test_a_barrier_reached_by_part_of_the_block():
    fails("partial_barrier", "partial_barrier_kernel", "a barrier reached by part of the block")


def test_a_shuffle_whose_mask_leaves_out_the_caller():
    fails("shuffle_without_own_lane", "with a mask that leaves out its lane")


def test_a_shuffle_naming_lanes_the_warp_does_not_have():
    fails("shuffle_missing_lanes", "names lanes that its warp does not have")


def test_launch_limits():
    fails("too_many_threads", "copy_kernel launched with 1025 threads per block")
    fails("too_much_shared", "asks for 65536 bytes of dynamic shared memory; it may use 49152")


def test_more_than_48kb_of_shared_memory_after_opting_in():
    assert run("shared_opted_in")[0] == 1.0


@needs_access_checks
def test_an_off_by_one_at_the_edge_reads_past_the_block():
    fails("read_past_the_end", "copy_kernel", "thread (0,0,0) of block (4,0,0) reads",
          "0 bytes past the end of a 512-byte block on cuda:0")


@needs_access_checks
def test_dynamic_shared_memory_past_its_end():
    fails("dynamic_shared_past_the_end", "writes dynamic shared memory 0 bytes past its end "
          "(the launch gave 1024 bytes)")


def test_a_pointer_argument_from_another_device():
    fails("other_device_argument", "launched on cuda:0: argument 0 points to memory of cuda:1")


@needs_access_checks
def test_a_pointer_from_another_device_inside_a_struct():
    fails("other_device_in_struct", "through_struct_kernel", "reads memory of cuda:1",
          "but the kernel runs on cuda:0")


def test_a_host_pointer_argument():
    fails("host_argument", "argument 0", "is not device memory (a host pointer)")


@needs_access_checks
def test_a_host_pointer_inside_a_struct():
    fails("host_pointer_in_struct", "reads host memory at")


def _python(code, **env):
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **env})


def test_a_device_pointer_followed_on_the_host_faults_with_a_message():
    done = _python("""
        import ctypes, numpy as np, convnet
        t = convnet.Tensor.from_numpy(np.ones(256, np.float32)).to("cuda:1")
        ctypes.string_at(t.__cuda_array_interface__["data"][0] + 8, 4)
        print("read it")
    """)
    assert done.returncode != 0 and "read it" not in done.stdout
    assert ("host code dereferenced device memory" in done.stderr
            and "(byte 8 of a 1024-byte block on cuda:1)" in done.stderr), done.stderr


def test_the_compute_capability_is_settable_and_sm75_runs_fp32():
    # On sm_75 a TF32 request runs the FP32 kernel: bit for bit what FP32 gives. On sm_80 the
    # TF32 result differs from it (the inputs are rounded to 10-bit mantissas).
    code = """
        import numpy as np, convnet
        from convnet import _core
        info = _core.cuda_device_info(0)
        print(f"sm_{info['major']}{info['minor']}")
        rng = np.random.default_rng(0)
        x, w = (convnet.Tensor.from_numpy(rng.standard_normal(s).astype(np.float32), "cuda:0")
                for s in ((7, 45), (13, 45)))
        runs = {}
        for p in ("fp32", "tf32"):
            convnet.set_precision(p)
            y = convnet.Tensor.zeros([7, 13], "float32", "cuda:0")
            _core.fc_forward(x, w, None, y)
            runs[p] = y.to("cpu").numpy()
        print("same" if np.array_equal(runs["fp32"], runs["tf32"]) else "different")
    """
    old, new = _python(code, CONVNET_EMU_CC="7.5"), _python(code)
    assert old.returncode == 0 and new.returncode == 0, old.stderr + new.stderr
    assert old.stdout.split() == ["sm_75", "same"]
    assert new.stdout.split() == ["sm_80", "different"]
    bad = _python("import convnet; convnet.cuda_device_count()", CONVNET_EMU_CC="6.1")
    assert "CONVNET_EMU_CC=6.1: the emulated device models compute capability 7.5 8.0" in (
        bad.stderr + bad.stdout)
