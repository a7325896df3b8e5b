"""The CUDA normalisation and pooling kernels (kernels/lrn.cu, rnorm.cu, pool.cu) on device
tensors, against the CPU path and the float64 references (runs only where a GPU is).

Every output is poisoned with NaN before its launch, so an element a kernel fails to write cannot
pass; backward runs with beta_acc=0 (dx poisoned too: a kernel that reads it leaks NaN) and
beta_acc=1 (dx starts random and must come back as dx + gradient). Shapes are odd on purpose:
batch 1, non-square maps, channel counts below, near and above the window sizes, AlexNet's 96 and
256 channels (which the LRN kernel cuts into channel segments), pools whose windows overhang the
far edge or start before the near one.
"""

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from gpu_helpers import FP32_REL_TOL, assert_close, dev, gpu_only, host, poisoned, shared
from helpers import GPU_VS_CPU_REL_TOL
from reference import lrn as lrn_ref
from reference import pool as pool_ref
from reference import rnorm as rnorm_ref

pytestmark = [pytest.mark.gpu]

BETA_ACCS = [0.0, 1.0]


def _shape_id(shape):
    return "x".join(map(str, shape))


def _params_id(params):
    return ",".join(str(v) for v in params)


def _window_id(window):
    return "-".join(f"{name}{a}x{b}" for name, (a, b) in zip(("size", "stride", "start", "out"),
                                                             window))


def _backward_gpu(fn, tx, ty, dy, dx0, params, beta_acc):
    """Runs a backward binding into a poisoned dx (beta_acc 0) or into dx0 (otherwise)."""
    tdx = poisoned(dx0.shape) if beta_acc == 0 else dev(dx0)
    fn(tx, ty, dev(dy), tdx, *params, beta_acc=beta_acc)
    return host(tdx)


def _expected_dx(grad, dx0, beta_acc):
    return grad if beta_acc == 0 else beta_acc * dx0.astype(np.float64) + grad


# ---- cross-map LRN ----------------------------------------------------------------------------

# (size, pre, blocked, alpha, beta, k): AlexNet's layer (the paper's n=5, alpha=1e-4, k=2), strong
# normalisations (a wrong window must not hide under the tolerance), even sizes, windows entirely
# ahead of or behind the map, pow's general path (beta != 0.75), the largest size with a tuned
# kernel (9), sizes on the naive kernel (10, 64: wider than every channel count), blocked windows.
LRN_PARAMS = [(5, 2, False, 1e-4, 0.75, 2.0), (5, 2, False, 0.1, 0.75, 1.0),
              (3, 1, False, 0.3, 0.75, 1.0), (4, 2, False, 0.2, 0.6, 2.0),
              (4, 0, False, 0.2, 0.75, 1.0), (7, 6, False, 0.1, 1.3, 0.5),
              (1, 0, False, 0.4, 0.75, 1.0), (9, 4, False, 0.05, 0.75, 1.0),
              (10, 5, False, 0.05, 0.75, 1.0), (64, 32, False, 3.0 / 64, 0.75, 1.0),
              (3, 1, True, 0.5, 0.5, 1.0), (4, 2, True, 0.3, 0.75, 2.0)]
LRN_SHAPES = [(1, 3, 5, 7), (2, 5, 7, 3), (3, 17, 6, 11), (2, 96, 13, 9)]


def _lrn_windows(channels, size, pre, blocked):
    """The maps each map's sum runs over, from the reference where it has the rule (pre =
    size // 2, cmrnorm's), else [f - pre, f - pre + size) clipped."""
    if pre == size // 2:
        return [lrn_ref.cmrnorm_window(f, channels, size, blocked) for f in range(channels)]
    assert not blocked
    return [range(max(f - pre, 0), min(f - pre + size, channels)) for f in range(channels)]


def _check_lrn(rng, shape, params, beta_acc):
    size, pre, blocked, alpha, beta, k = params
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    dx0 = rng.standard_normal(shape).astype(np.float32)

    tx, ty = dev(x), poisoned(shape)
    _core.lrn_forward(tx, ty, *params)
    y_gpu = host(ty)
    dx_gpu = _backward_gpu(_core.lrn_backward, tx, ty, dy, dx0, params, beta_acc)

    y_cpu = np.empty_like(x)
    _core.lrn_forward(shared(x), shared(y_cpu), *params)
    dx_cpu = np.empty_like(x)
    _core.lrn_backward(shared(x), shared(y_cpu), shared(dy), shared(dx_cpu), *params)

    windows = _lrn_windows(shape[1], size, pre, blocked)
    y_ref = lrn_ref.forward(x, windows, alpha, beta, k)
    dx_ref = lrn_ref.backward(x, dy, windows, alpha, beta, k)

    assert_close(y_gpu, y_cpu, GPU_VS_CPU_REL_TOL, "y: GPU vs CPU")
    assert_close(y_gpu, y_ref, FP32_REL_TOL, "y: GPU vs float64 reference")
    assert_close(dx_gpu, _expected_dx(dx_cpu, dx0, beta_acc), GPU_VS_CPU_REL_TOL,
                 "dx: GPU vs CPU")
    assert_close(dx_gpu, _expected_dx(dx_ref, dx0, beta_acc), FP32_REL_TOL,
                 "dx: GPU vs float64 reference")


@pytest.mark.parametrize("beta_acc", BETA_ACCS)
@pytest.mark.parametrize("shape", LRN_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("params", LRN_PARAMS, ids=_params_id)
def test_lrn_gpu(rng, params, shape, beta_acc):
    _check_lrn(rng, shape, params, beta_acc)


@pytest.mark.parametrize("shape", [(2, 96, 55, 55), (3, 256, 27, 27)], ids=_shape_id)
def test_lrn_gpu_alexnet_shapes(rng, shape):
    _check_lrn(rng, shape, (5, 2, False, 1e-4, 0.75, 2.0), 1.0)


def test_lrn_gpu_paper_and_cmrnorm_forms(rng):
    """The numpy wrappers' parameter mappings reach the same kernels: the paper's LRN(n=5) and
    cuda-convnet's cmrnorm(size=5, scale=0.0005, minDiv=2) are AlexNet's layer."""
    x = (rng.standard_normal((2, 48, 7, 6)) * 3).astype(np.float32)
    ty = poisoned(x.shape)
    _core.lrn_forward(dev(x), ty, 5, 2, False, 0.0005 / 5, 0.75, 2.0)
    assert_close(host(ty), ops.lrn_forward(x, size=5), GPU_VS_CPU_REL_TOL, "paper LRN")
    assert_close(host(ty), ops.cmrnorm_forward(x, size=5, scale=0.0005, pow=0.75, min_div=2.0),
                 GPU_VS_CPU_REL_TOL, "cmrnorm")


# ---- within-map normalisations (rnorm, cnorm) ------------------------------------------------

# (size, pre, alpha, beta, k). pre = size // 2 is cuda-convnet's window (the reference's); the
# others are checked against the CPU path only. Size 9 on 5x4 maps: windows wider than the map.
WITHIN_PARAMS = [(3, 1, 4.0 / 9, 0.75, 1.0), (3, 1, 0.00005 / 9, 0.75, 1.0),
                 (4, 2, 6.0 / 16, 0.6, 2.0), (5, 2, 9.0 / 25, 1.2, 0.5),
                 (9, 4, 8.0 / 81, 0.75, 1.0), (4, 0, 0.3, 0.75, 1.0), (5, 4, 0.2, 0.75, 1.0)]
# Small maps; 20x37 and 40x70 span several 16x32 tiles with partial ones at the far edges.
WITHIN_SHAPES = [(1, 3, 5, 4), (2, 2, 7, 7), (1, 5, 1, 6), (2, 3, 20, 37), (1, 2, 40, 70)]


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


@pytest.mark.parametrize("kind", ["rnorm", "cnorm"])
@pytest.mark.parametrize("beta_acc", BETA_ACCS)
@pytest.mark.parametrize("shape", WITHIN_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("params", WITHIN_PARAMS, ids=_params_id)
def test_within_map_norm_gpu(rng, kind, params, shape, beta_acc):
    forward = getattr(_core, f"{kind}_forward")
    backward = getattr(_core, f"{kind}_backward")
    x = (rng.standard_normal(shape) * 2).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    dx0 = rng.standard_normal(shape).astype(np.float32)

    tx, ty = dev(x), poisoned(shape)
    forward(tx, ty, *params)
    y_gpu = host(ty)
    dx_gpu = _backward_gpu(backward, tx, ty, dy, dx0, params, beta_acc)

    y_cpu, dx_cpu = np.empty_like(x), np.empty_like(x)
    forward(shared(x), shared(y_cpu), *params)
    backward(shared(x), shared(y_cpu), shared(dy), shared(dx_cpu), *params)
    assert_close(y_gpu, y_cpu, GPU_VS_CPU_REL_TOL, "y: GPU vs CPU")
    assert_close(dx_gpu, _expected_dx(dx_cpu, dx0, beta_acc), GPU_VS_CPU_REL_TOL,
                 "dx: GPU vs CPU")

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
    assert_close(y_gpu, y_ref, FP32_REL_TOL, "y: GPU vs float64")
    assert_close(dx_gpu, _expected_dx(dx_ref, dx0, beta_acc), FP32_REL_TOL, "dx: GPU vs float64")


@gpu_only
def test_within_map_norm_gpu_refuses_a_window_beyond_shared_memory():
    x = np.zeros((1, 1, 300, 300), np.float32)
    with pytest.raises(ValueError, match="cnorm_backward: a window of 200 needs more shared"):
        _core.cnorm_backward(dev(x), dev(x), dev(x), dev(x), 200, 100, 0.1, 0.75, 1.0)


# ---- pooling ---------------------------------------------------------------------------------

# (size, stride, start, outputs) as (h, w) pairs; outputs 0 means cuda-convnet's rule. AlexNet's
# overlapping 3/2, 2/2, a 3x3 window with a negative start (padding), non-square windows and
# strides, windows that overhang the far edge, explicit output counts, stride > size (gaps: inputs
# no window reads get dx = 0), 1x1.
POOL_WINDOWS = [((3, 3), (2, 2), (0, 0), (0, 0)), ((2, 2), (2, 2), (0, 0), (0, 0)),
                ((3, 3), (1, 1), (-1, -1), (0, 0)), ((3, 2), (2, 1), (0, 0), (0, 0)),
                ((2, 3), (3, 2), (1, -1), (0, 0)), ((3, 3), (2, 2), (0, 0), (2, 3)),
                ((2, 2), (2, 2), (-1, -1), (4, 3)), ((4, 1), (1, 2), (0, 0), (0, 0)),
                ((1, 1), (3, 2), (0, 0), (0, 0)), ((5, 5), (3, 3), (-2, -2), (0, 0))]
POOL_SHAPES = [(1, 3, 7, 5), (2, 5, 6, 9), (3, 17, 10, 7), (2, 96, 13, 13)]


def _pool_geometry(shape, window):
    size, stride, start, outputs = window
    oh = pool_ref.output_size(shape[2], size[0], stride[0], start[0], outputs[0])
    ow = pool_ref.output_size(shape[3], size[1], stride[1], start[1], outputs[1])
    empty = (pool_ref.has_empty_window(shape[2], oh, size[0], stride[0], start[0])
             or pool_ref.has_empty_window(shape[3], ow, size[1], stride[1], start[1]))
    return oh, ow, empty


def _check_pool(x, mode, window, beta_acc, rng):
    size, stride, start, _ = window
    oh, ow, empty = _pool_geometry(x.shape, window)
    if empty:
        pytest.skip("a window with no in-image pixel (the ops refuse it)")
    params = (mode, size[0], size[1], stride[0], stride[1], start[0], start[1])
    yshape = (x.shape[0], x.shape[1], oh, ow)
    dy = rng.standard_normal(yshape).astype(np.float32)
    dx0 = rng.standard_normal(x.shape).astype(np.float32)

    tx, ty = dev(x), poisoned(yshape)
    _core.pool_forward(tx, ty, *params)
    y_gpu = host(ty)
    dx_gpu = _backward_gpu(_core.pool_backward, tx, ty, dy, dx0, params, beta_acc)

    y_cpu, dx_cpu = np.empty(yshape, np.float32), np.empty_like(x)
    _core.pool_forward(shared(x), shared(y_cpu), *params)
    _core.pool_backward(shared(x), shared(y_cpu), shared(dy), shared(dx_cpu), *params)
    y_ref = pool_ref.forward(x, mode, size, stride, start, oh, ow)
    dx_ref = pool_ref.backward(x, dy, mode, size, stride, start)

    assert_close(y_gpu, y_cpu, GPU_VS_CPU_REL_TOL, "y: GPU vs CPU")
    assert_close(y_gpu, y_ref, FP32_REL_TOL, "y: GPU vs float64 reference")
    assert_close(dx_gpu, _expected_dx(dx_cpu, dx0, beta_acc), GPU_VS_CPU_REL_TOL,
                 "dx: GPU vs CPU")
    assert_close(dx_gpu, _expected_dx(dx_ref, dx0, beta_acc), FP32_REL_TOL,
                 "dx: GPU vs float64 reference")


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("beta_acc", BETA_ACCS)
@pytest.mark.parametrize("shape", POOL_SHAPES, ids=_shape_id)
@pytest.mark.parametrize("window", POOL_WINDOWS, ids=_window_id)
def test_pool_gpu(rng, mode, window, shape, beta_acc):
    _check_pool(rng.standard_normal(shape).astype(np.float32), mode, window, beta_acc, rng)


@pytest.mark.parametrize("beta_acc", BETA_ACCS)
@pytest.mark.parametrize("window", POOL_WINDOWS[:3], ids=_window_id)
def test_max_pool_gpu_ties_all_receive_the_gradient(rng, window, beta_acc):
    """Small integers make ties in most windows: every input equal to its window's maximum gets
    that window's dy, as on the CPU (csrc/cpu/pool.cpp) and in the reference."""
    x = rng.integers(-2, 3, size=(2, 5, 9, 11)).astype(np.float32)
    _check_pool(x, "max", window, beta_acc, rng)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("shape", [(2, 96, 55, 55), (3, 256, 13, 13)], ids=_shape_id)
def test_pool_gpu_alexnet_shapes(rng, mode, shape):
    _check_pool(rng.standard_normal(shape).astype(np.float32), mode, POOL_WINDOWS[0], 1.0, rng)
