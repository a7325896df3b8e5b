"""Shared by the GPU tests: moving arrays to and from the device, outputs poisoned with NaN so an
element a kernel fails to write cannot pass, and the issue's tolerances against the float64
references (relative to the reference's largest magnitude)."""

import os

import numpy as np
import pytest

import convnet

# CONVNET_GPU_TESTS_DEVICE=cpu runs the GPU tests' code on CPU tensors (the bindings take both):
# it checks the tests themselves, their references and the binding signatures where no GPU is,
# so that a GPU session's failures are the kernels', not the tests'. GPU vs CPU comparisons are
# then trivially equal; tests that only mean something on a GPU skip themselves.
DEVICE = os.environ.get("CONVNET_GPU_TESTS_DEVICE", "cuda:0")
STAND_IN = DEVICE == "cpu"
# For tests of GPU-only behaviour (a device limit, a CPU argument refused by a GPU op).
gpu_only = pytest.mark.skipif(STAND_IN, reason="only meaningful on a GPU")
# Relative error against the float64 reference: FP32 paths, TF32 and BF16 tensor-core paths.
FP32_REL_TOL = 1e-4
TF32_REL_TOL = 2e-3
BF16_REL_TOL = 2e-2


def dev(a, dtype=np.float32):
    """A C-contiguous copy of `a` on the GPU."""
    return convnet.Tensor.from_numpy(np.ascontiguousarray(a, dtype=dtype), DEVICE)


def shared(a):
    """A CPU tensor over `a`'s own memory (DLPack, no copy): the CPU path writes into the array."""
    return convnet.Tensor.from_dlpack(a)


def poisoned(shape, dtype=np.float32):
    """A device tensor full of NaN."""
    return convnet.Tensor.from_numpy(np.full(shape, np.nan, dtype=dtype), DEVICE)


def host(t) -> np.ndarray:
    return t.to("cpu").numpy()


def assert_close(got, want, rel_tol, what=""):
    """No NaN anywhere, and max |got - want| / max |want| under rel_tol."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert not np.isnan(got).any(), f"{what}: NaN in the GPU result (an unwritten element?)"
    scale = max(np.abs(want).max(), 1e-30)
    err = np.abs(got - want).max() / scale
    assert err < rel_tol, f"{what}: relative error {err:.2e} >= {rel_tol:.0e}"
