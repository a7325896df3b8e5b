"""Locally connected layer against the reference and finite differences."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
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
