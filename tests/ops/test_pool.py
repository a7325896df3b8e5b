"""Max and average pooling with cuda-convnet's geometry, against the reference and finite
differences."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import pool as ref

# (x shape, size, stride, start, outputs): overlapping 3/2, non-square, negative start, explicit
# outputs, windows hanging off the far side, batch 1.
CASES = [
    ((1, 3, 7, 7), 3, 2, 0, 0),
    ((2, 5, 9, 6), (3, 2), (2, 1), 0, 0),
    ((2, 4, 8, 8), 3, 2, -1, 0),
    ((1, 3, 10, 7), 3, 2, (1, -1), 0),
    ((2, 2, 6, 5), 3, 2, 0, (2, 3)),
    ((3, 48, 5, 5), 3, 3, 0, 0),
    ((1, 1, 4, 9), (4, 1), (1, 2), 0, 0),
]


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("xs, size, stride, start, outputs", CASES)
def test_pool_matches_reference(rng, mode, xs, size, stride, start, outputs):
    x = f32(rng.standard_normal(xs))[0]
    kw = dict(mode=mode, size=size, stride=stride, start=start, outputs=outputs)
    y = ops.pool_forward(x, **kw)
    sz, st, sa, so = _pair(size), _pair(stride), _pair(start), _pair(outputs)
    oh = ref.output_size(xs[2], sz[0], st[0], sa[0], so[0])
    ow = ref.output_size(xs[3], sz[1], st[1], sa[1], so[1])
    assert y.shape == (xs[0], xs[1], oh, ow)
    assert_close(y, ref.forward(x, mode, sz, st, sa, oh, ow), what="y")
    dy = f32(rng.standard_normal(y.shape))[0]
    assert_close(ops.pool_backward(x, y, dy, **kw), ref.backward(x, dy, mode, sz, st, sa),
                 what="dx")


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("xs, size, stride, start, outputs", CASES)
def test_pool_gradcheck(rng, mode, xs, size, stride, start, outputs):
    kw = dict(mode=mode, size=size, stride=stride, start=start, outputs=outputs)
    gradcheck(lambda x: ops.pool_forward(x, **kw),
              lambda x, dy: (ops.pool_backward(x, ops.pool_forward(x, **kw), dy, **kw),),
              [rng.standard_normal(xs)], wrt=[0], rng=rng)


def test_alexnet_output_sizes():
    for size, want in [(55, 27), (27, 13), (13, 6), (32, 16), (16, 8), (24, 12)]:
        assert ops.pool_output_size(size, 3, 2) == want


def test_avg_divides_by_in_image_count():
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0] = 4.0
    y = ops.pool_forward(x, mode="avg", size=3, stride=2, start=-1)
    # The first window is clipped to the 2x2 corner: (4 + 1 + 1 + 1) / 4.
    assert y[0, 0, 0, 0] == pytest.approx(7 / 4)


def test_max_ties_all_receive_the_gradient():
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 0, 1] = x[0, 0, 2, 2] = 5.0  # a tie for the maximum of the single 3x3 window
    y = ops.pool_forward(x, mode="max", size=3, stride=2)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 5.0
    dx = ops.pool_backward(x, y, np.full_like(y, 2.0), mode="max", size=3, stride=2)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = expected[0, 0, 2, 2] = 2.0
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(dx, ref.backward(x, np.full_like(y, 2.0), "max", (3, 3),
                                                   (2, 2), (0, 0)))


def test_window_outside_the_image_is_an_error():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="pool_forward.*outside"):
        ops.pool_forward(x, mode="max", size=2, stride=1, start=-2)
    with pytest.raises(ValueError, match="pool_forward.*outside"):
        ops.pool_forward(x, mode="max", size=2, stride=2, outputs=4)
