"""Shared by the GPU tests (the `gpu`-marked tests in tests/ops/test_<op>.py): moving arrays to and
from the device, outputs poisoned with NaN so an element a kernel fails to write cannot pass,
gradient outputs for beta 0 (overwritten: poisoned) and beta 1 (accumulated onto), test ids, the
cases shared by two op families, and the issue's tolerances against the float64 references
(relative to the reference's largest magnitude).

test_net_gpu.py imports assert_close from here: it is helpers.assert_close."""

import os
import zlib

import numpy as np
import pytest

import convnet
from convnet import _core
from helpers import FP32_REL_TOL, GPU_VS_CPU_REL_TOL, assert_close
from reference import conv as conv_ref
from reference import rnorm as rnorm_ref

# CONVNET_GPU_TESTS_DEVICE=cpu runs the GPU tests' code on CPU tensors (the bindings take both):
# it checks the tests themselves, their references and the binding signatures where no GPU is,
# so that a GPU session's failures are the kernels', not the tests'. GPU vs CPU comparisons are
# then trivially equal; tests that only mean something on a GPU skip themselves.
DEVICE = os.environ.get("CONVNET_GPU_TESTS_DEVICE", "cuda:0")
STAND_IN = DEVICE == "cpu"
# For tests of GPU-only behaviour (a device limit, a CPU argument refused by a GPU op).
gpu_only = pytest.mark.skipif(STAND_IN, reason="only meaningful on a GPU")


def _emulated() -> bool:
    if STAND_IN or convnet.cuda_device_count() == 0:
        return False
    return convnet._core.cuda_device_info(0)["name"].startswith("convnet emulated device")


# The emulated device (CONVNET_CUDA=EMU) runs a few million kernel threads per second: its checks
# come from the odd small cases, and the AlexNet-sized ones are for real GPUs.
EMULATED = _emulated()


def nccl_missing() -> str:
    """Why NCCL cannot be used here ("" when it can), after pointing the library loader at the
    nvidia-nccl wheel where it is installed."""
    from convnet import replicas
    replicas.use_wheel_nccl()
    return _core.nccl_status()


def nccl_ranks_unusable(nranks: int = 2) -> str:
    """Why NCCL cannot join `nranks` processes of one GPU each here ("" when it can): the
    library, and a GPU per rank (each emulated process has devices of its own)."""
    if nccl_missing():
        return nccl_missing()
    if not EMULATED and convnet.cuda_device_count() < nranks:
        return f"NCCL needs a GPU per rank: {nranks} GPUs"
    return ""


def real_gpu_sized(cases, too_big):
    """cases, with those for which too_big(case) holds skipped on the emulated device."""
    skip = pytest.mark.skipif(EMULATED, reason="AlexNet-sized: run on real GPUs, not emulated")
    return [pytest.param(c, marks=skip) if too_big(c) else c for c in cases]
# Relative error against the float64 reference of the TF32 and BF16 tensor-core paths (FP32
# paths: helpers.FP32_REL_TOL). assert_close is helpers' too: no NaN (a poisoned element the kernel
# did not write) or inf, and max |got - want| / max |want| under the tolerance.
TF32_REL_TOL = 2e-3
BF16_REL_TOL = 2e-2
# The math precisions of the GEMM and convolution kernels (the `precision` fixture in
# tests/ops/conftest.py runs a test under each) and their bounds against the float64 reference.
PRECISIONS = ["fp32", "tf32", "bf16"]
PRECISION_REL_TOL = {"fp32": FP32_REL_TOL, "tf32": TF32_REL_TOL, "bf16": BF16_REL_TOL}
# Backward passes run with beta 0 (the gradient is overwritten) and 1 (accumulated onto).
BETAS = [0.0, 1.0]


def dev(a, dtype=np.float32):
    """A C-contiguous copy of `a` on the GPU."""
    return convnet.Tensor.from_numpy(np.ascontiguousarray(a, dtype=dtype), DEVICE)


def cpu(a):
    """A float32 CPU tensor (a copy): the CPU path through the same tensor bindings."""
    return convnet.Tensor.from_numpy(np.ascontiguousarray(a, dtype=np.float32), "cpu")


def shared(a):
    """A CPU tensor over `a`'s own memory (DLPack, no copy): the CPU path writes into the array."""
    return convnet.Tensor.from_dlpack(a)


def poisoned(shape, dtype=np.float32):
    """A device tensor full of NaN."""
    return convnet.Tensor.from_numpy(np.full(shape, np.nan, dtype=dtype), DEVICE)


def host(t) -> np.ndarray:
    return t.to("cpu").numpy()


def call(name, *args, **kwargs):
    """_core.<name>(...), looked up at call time: a test file still collects with a build that
    lacks the binding."""
    return getattr(_core, name)(*args, **kwargs)


# ---- gradients: overwritten (beta 0) or accumulated (beta 1) ---------------------------------

def old_gradient(shape, beta, rng):
    """What a gradient buffer holds before a backward pass: NaN when it is overwritten (beta 0),
    random values to accumulate onto otherwise."""
    if beta == 0:
        return np.full(shape, np.nan, dtype=np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def gradient_out(old, beta):
    """A gradient output on the device: poisoned for beta 0 (a kernel that reads it leaks NaN),
    `old` to accumulate onto otherwise."""
    return poisoned(old.shape) if beta == 0 else dev(old)


def accumulated(old, beta, grad):
    """The float64 expectation of beta*old + grad (old ignored when beta is 0)."""
    return grad if beta == 0 else beta * np.asarray(old, np.float64) + grad


def forward_backward(forward, backward, x, yshape, dy, dx0, params, beta_acc):
    """A (x, y, *params) forward binding and its (x, y, dy, dx, *params) backward, on the device (y
    poisoned, dx from gradient_out(dx0, beta_acc)) and on the CPU: ((y, dx) from the device,
    (y, dx) from the CPU), as numpy arrays."""
    tx, ty = dev(x), poisoned(yshape)
    forward(tx, ty, *params)
    tdx = gradient_out(dx0, beta_acc)
    backward(tx, ty, dev(dy), tdx, *params, beta_acc=beta_acc)
    y_cpu, dx_cpu = np.empty(yshape, x.dtype), np.empty_like(x)
    forward(shared(x), shared(y_cpu), *params)
    backward(shared(x), shared(y_cpu), shared(dy), shared(dx_cpu), *params)
    return (host(ty), host(tdx)), (y_cpu, dx_cpu)


# ---- comparisons -----------------------------------------------------------------------------

def exact(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert not np.isnan(got.astype(np.float64)).any(), f"{what}: NaN in the GPU result"
    np.testing.assert_array_equal(got, want, err_msg=what)


def check(got, cpu_want, ref_want, what, cpu_tol=GPU_VS_CPU_REL_TOL, ref_tol=FP32_REL_TOL):
    """Against the CPU path and against the float64 reference."""
    assert_close(got, cpu_want, cpu_tol, f"{what} vs CPU")
    assert_close(got, ref_want, ref_tol, f"{what} vs float64 reference")


def check_gradients(what, outs, refs, cpus, olds, beta, tol):
    """The device gradients `outs` (dx, dw, db) against accumulated(old, beta, ...) of the float64
    references and of the CPU path's results."""
    for name, out, ref, cpu_grad, old in zip(("dx", "dw", "db"), outs, refs, cpus, olds):
        got = host(out)
        assert_close(got, accumulated(old, beta, ref), tol,
                     what=f"{what} {name} (beta={beta}) vs float64")
        assert_close(got, accumulated(old, beta, cpu_grad), tol,
                     what=f"{what} {name} (beta={beta}) vs CPU")


def check_forward_backward(gpu, cpu_results, refs, dx0, beta_acc):
    """(y, dx) from the device against the CPU path's (GPU_VS_CPU_REL_TOL) and the float64
    oracles (FP32_REL_TOL), dx accumulated onto dx0 unless beta_acc is 0."""
    for name, got, cpu_want, ref_want in zip(("y", "dx"), gpu, cpu_results, refs):
        if name == "dx":
            cpu_want, ref_want = (accumulated(dx0, beta_acc, w) for w in (cpu_want, ref_want))
        assert_close(got, cpu_want, GPU_VS_CPU_REL_TOL, f"{name}: GPU vs CPU")
        assert_close(got, ref_want, FP32_REL_TOL, f"{name}: GPU vs float64 reference")


def scalar_close(got, want, tol, what):
    assert np.isfinite(got), f"{what}: {got}"
    assert abs(got - want) <= tol * max(abs(want), 1e-30), f"{what}: {got!r} != {want!r}"


# ---- ids and inputs --------------------------------------------------------------------------

def shape_id(shape):
    return "x".join(map(str, shape))


def params_id(params):
    return ",".join(str(v) for v in params)


def keyed_rng(*key):
    """A generator seeded by the key (crc32 of its repr: stable across processes)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def normal_f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


# Float64 references are slow on the big shapes: computed once per case and shared by the
# precisions and betas (keys name their op).
_REFERENCE_CACHE = {}


def cached(key, fn):
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = fn()
    return _REFERENCE_CACHE[key]


# ---- convolution geometries (the conv and local GPU tests) -----------------------------------

# (x shape, filters, kernel, stride, padding, groups, rule)
CONV_CASES = [
    ((1, 5, 9, 13), 6, (3, 3), (2, 2), (1, 1), 1, "floor"),
    ((3, 17, 9, 13), 7, (3, 3), (2, 2), (1, 1), 1, "floor"),
    ((3, 17, 9, 13), 7, (3, 3), (1, 1), (1, 1), 1, "floor"),
    ((1, 5, 9, 13), 6, (5, 5), (3, 3), (0, 0), 1, "cuda-convnet"),    # last windows overhang
    ((3, 10, 9, 13), 6, (5, 5), (3, 3), (0, 0), 2, "cuda-convnet"),   # overhang and groups 2
    ((3, 10, 13, 9), 34, (3, 3), (2, 2), (1, 1), 2, "floor"),
    ((3, 5, 9, 13), 130, (1, 1), (1, 1), (0, 0), 1, "floor"),         # 130 filters: two M tiles
    ((2, 6, 7, 8), 4, (3, 2), (1, 2), (0, 1), 2, "cuda-convnet"),     # non-square kernel
    ((1, 3, 224, 224), 96, (11, 11), (4, 4), (0, 0), 1, "cuda-convnet"),  # conv1: 55x55
    ((2, 3, 40, 37), 8, (3, 3), (1, 1), (1, 1), 1, "floor"),          # backward filter splits K
    ((8, 96, 27, 27), 256, (5, 5), (1, 1), (2, 2), 2, "floor"),       # AlexNet conv2, batch 8
]


def conv_id(case):
    xs, f, k, s, p, g, rule = case
    return (f"x{'x'.join(map(str, xs))}-f{f}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}-g{g}-"
            f"{rule}")


def conv_output_size(case):
    """(oh, ow) of a CONV_CASES geometry."""
    xs, _, kernel, stride, padding, _, rule = case
    return tuple(conv_ref.output_size(xs[2 + i], kernel[i], stride[i], padding[i], rule)
                 for i in range(2))


# ---- within-map normalisations (the rnorm and cnorm GPU tests) -------------------------------

# (size, pre, alpha, beta, k). pre = size // 2 is cuda-convnet's window (the reference's); the
# others are checked against the CPU path only. Size 9 on 5x4 maps: windows wider than the map.
WITHIN_PARAMS = [(3, 1, 4.0 / 9, 0.75, 1.0), (3, 1, 0.00005 / 9, 0.75, 1.0),
                 (4, 2, 6.0 / 16, 0.6, 2.0), (5, 2, 9.0 / 25, 1.2, 0.5),
                 (9, 4, 8.0 / 81, 0.75, 1.0), (4, 0, 0.3, 0.75, 1.0), (5, 4, 0.2, 0.75, 1.0)]
# Small maps; 20x37 and 40x70 span several 16x32 tiles with partial ones at the far edges.
WITHIN_SHAPES = [(1, 3, 5, 4), (2, 2, 7, 7), (1, 5, 1, 6), (2, 3, 20, 37), (1, 2, 40, 70)]


def within_map_norm_cases(kind):
    """The parametrisation of test_within_map_norm_gpu for `kind` (rnorm or cnorm)."""
    marks = [pytest.mark.parametrize("kind", [kind]),
             pytest.mark.parametrize("beta_acc", BETAS),
             pytest.mark.parametrize("shape", WITHIN_SHAPES, ids=shape_id),
             pytest.mark.parametrize("params", WITHIN_PARAMS, ids=params_id)]

    def decorate(test):
        for mark in reversed(marks):  # as if stacked in this order, top to bottom
            test = mark(test)
        return test
    return decorate


def _within_ref(kind, x, dy, params):
    """float64 reference (y, dx) where one exists for these parameters, else None for each."""
    size, pre, alpha, beta, k = params
    if pre != size // 2:
        return None, None
    scale = alpha * size * size
    if kind == "rnorm":
        return (rnorm_ref.forward(x, size, scale, beta, k),
                rnorm_ref.backward(x, dy, size, scale, beta, k))
    return rnorm_ref.cnorm_forward(x, size, scale, beta, k), None


def check_within_map_norm(rng, kind, params, shape, beta_acc):
    """The GPU kernels of `kind` against the CPU path and the float64 oracles, poisoned outputs,
    backward into a poisoned (beta_acc 0) or random (1) dx."""
    forward = getattr(_core, f"{kind}_forward")
    backward = getattr(_core, f"{kind}_backward")
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    dx0 = rng.standard_normal(shape).astype(np.float32)

    gpu, (y_cpu, dx_cpu) = forward_backward(forward, backward, x, shape, dy, dx0, params,
                                            beta_acc)

    # float64 oracles: the reference where it has the formula, else our CPU path in float64
    # (cnorm's exact backward is checked against finite differences in tests/ops/test_cnorm.py).
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    y_ref, dx_ref = _within_ref(kind, x64, dy64, params)
    if y_ref is None:
        y_ref = np.empty_like(x64)
        forward(shared(x64), shared(y_ref), *params)
    if dx_ref is None:
        dx_ref = np.empty_like(x64)
        backward(shared(x64), shared(y_ref), shared(dy64), shared(dx_ref), *params)
    check_forward_backward(gpu, (y_cpu, dx_cpu), (y_ref, dx_ref), dx0, beta_acc)
