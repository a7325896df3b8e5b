"""Locally connected layer against the reference and finite differences.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernels (kernels/local.cu, always
FP32) on device tensors against the float64 reference and the CPU path, forward and backward, on
the small convolution geometries of the conv GPU tests (gpu_helpers.CONV_CASES: overhanging
windows, groups, non-square kernels). Outputs are poisoned with NaN before each launch, so an
element a kernel fails to write cannot pass; backward runs with beta=0 (gradients poisoned too)
and beta=1 (they start random and must come back as old + gradient).
"""

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from gpu_helpers import (BETAS, CONV_CASES, check_gradients, conv_id, conv_output_size, dev,
                         gradient_out, host, keyed_rng, normal_f32, poisoned)
from helpers import FP32_REL_TOL, assert_close, f32, gradcheck
from reference import local as ref

# (x shape, (F, C/groups, KH, KW), stride, padding, groups, rule)
CASES = [
    ((1, 3, 5, 4), (4, 3, 3, 3), 1, 1, 1, "floor"),
    ((2, 4, 7, 6), (6, 2, 3, 2), (2, 1), (1, 0), 2, "cuda-convnet"),
    ((3, 5, 6, 6), (3, 5, 3, 3), 2, 0, 1, "cuda-convnet"),
    ((2, 2, 3, 3), (2, 2, 1, 1), 1, 0, 1, "floor"),
]


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


def _shapes(xs, bank, stride, padding, rule):
    s, p = _pair(stride), _pair(padding)
    oh = ops.conv_output_size(xs[2], bank[2], s[0], p[0], rule=rule)
    ow = ops.conv_output_size(xs[3], bank[3], s[1], p[1], rule=rule)
    return (oh, ow) + bank, (bank[0], oh, ow)


@pytest.mark.parametrize("xs, bank, stride, padding, groups, rule", CASES)
def test_local_matches_reference(rng, xs, bank, stride, padding, groups, rule):
    wshape, bshape = _shapes(xs, bank, stride, padding, rule)
    x, w, b = f32(rng.standard_normal(xs), rng.standard_normal(wshape), rng.standard_normal(bshape))
    kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)
    s, p = _pair(stride), _pair(padding)
    y = ops.local_forward(x, w, b, **kw)
    assert_close(y, ref.forward(x, w, b, s, p, groups), what="y")
    assert_close(ops.local_forward(x, w, **kw), ref.forward(x, w, None, s, p, groups),
                 what="y without bias")
    dy = f32(rng.standard_normal(y.shape))[0]
    for got, want, name in zip(ops.local_backward(x, w, dy, **kw),
                               ref.backward(x, w, dy, s, p, groups), ("dx", "dw", "db")):
        assert_close(got, want, what=name)


@pytest.mark.parametrize("xs, bank, stride, padding, groups, rule", CASES)
def test_local_gradcheck(rng, xs, bank, stride, padding, groups, rule):
    wshape, bshape = _shapes(xs, bank, stride, padding, rule)
    kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)
    gradcheck(lambda x, w, b: ops.local_forward(x, w, b, **kw),
              lambda x, w, b, dy: ops.local_backward(x, w, dy, **kw),
              [rng.standard_normal(xs), rng.standard_normal(wshape), rng.standard_normal(bshape)],
              wrt=[0, 1, 2], rng=rng)


def test_local_with_equal_banks_is_a_convolution(rng):
    x, bank = f32(rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3)))
    y = ops.conv_forward(x, bank, padding=1)
    w = np.ascontiguousarray(np.broadcast_to(bank, y.shape[2:] + bank.shape))
    np.testing.assert_allclose(ops.local_forward(x, w, padding=1), y, rtol=1e-5, atol=1e-5)


def test_local_bad_weights():
    x = np.zeros((1, 3, 5, 5), np.float32)
    with pytest.raises(ValueError, match="local_forward: w must have 6 dimensions"):
        ops.local_forward(x, np.zeros((4, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="one filter bank per output position"):
        ops.local_forward(x, np.zeros((2, 3, 4, 3, 3, 3), np.float32))


# ---- the CUDA kernels ------------------------------------------------------------------------

GPU_CASES = [c for c in CONV_CASES if c[0][2] * c[0][3] <= 9 * 13 and c[1] <= 34]


@pytest.mark.gpu
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("case", GPU_CASES, ids=conv_id)
def test_local(case, beta):
    """Locally connected forward and backward (always FP32 on the GPU)."""
    xs, f, kernel, stride, padding, groups, rule = case
    oh, ow = conv_output_size(case)
    rng = keyed_rng("local", case)
    x = normal_f32(rng, xs)
    w = normal_f32(rng, (oh, ow, f, xs[1] // groups) + kernel)
    b = normal_f32(rng, (f, oh, ow))
    dy = normal_f32(rng, (xs[0], f, oh, ow))
    geometry = (stride[0], stride[1], padding[0], padding[1], groups)
    cpu_kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)

    y_ref = ref.forward(x, w, b, stride, padding, groups)
    ty = poisoned(y_ref.shape)
    _core.local_forward(dev(x), dev(w), dev(b), ty, *geometry)
    assert_close(host(ty), y_ref, FP32_REL_TOL, what="local y vs float64")
    assert_close(host(ty), ops.local_forward(x, w, b, **cpu_kw), FP32_REL_TOL,
                 what="local y vs CPU")

    refs = ref.backward(x, w, dy, stride, padding, groups)
    olds = [normal_f32(rng, a.shape) for a in refs]
    outs = [gradient_out(old, beta) for old in olds]
    _core.local_backward(dev(x), dev(w), dev(dy), *outs, *geometry, beta=beta)
    check_gradients("local", outs, refs, ops.local_backward(x, w, dy, **cpu_kw), olds, beta,
                    FP32_REL_TOL)
