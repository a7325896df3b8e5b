"""eltsum, eltmax and concat against the reference and finite differences."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import eltwise as ref


@pytest.mark.parametrize("shape, coeffs", [((1, 5), [1.0]), ((2, 3, 4, 5), [1.0, -1.0]),
                                           ((3, 7), [0.5, 2.0, -0.25])])
def test_eltsum(rng, shape, coeffs):
    xs = f32(*[rng.standard_normal(shape) for _ in coeffs])
    assert_close(ops.eltsum_forward(xs, coeffs), ref.eltsum(xs, coeffs), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    for got, c in zip(ops.eltsum_backward(dy, coeffs), coeffs):
        assert_close(got, c * dy.astype(np.float64), what="dx")
    assert_close(ops.eltsum_forward(xs), ref.eltsum(xs, [1.0] * len(xs)), what="default coeffs")
    gradcheck(lambda *a: ops.eltsum_forward(list(a), coeffs),
              lambda *a: tuple(ops.eltsum_backward(a[-1], coeffs)),
              [rng.standard_normal(shape) for _ in coeffs], wrt=list(range(len(coeffs))), rng=rng)


@pytest.mark.parametrize("shape, inputs", [((2, 3, 4, 5), 2), ((5, 9), 3)])
def test_eltmax(rng, shape, inputs):
    xs = f32(*[rng.standard_normal(shape) for _ in range(inputs)])
    y = ops.eltmax_forward(xs)
    assert_close(y, ref.eltmax(xs), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    for got, want in zip(ops.eltmax_backward(xs, y, dy), ref.eltmax_backward(xs, dy)):
        assert_close(got, want, what="dx")
    gradcheck(lambda *a: ops.eltmax_forward(list(a)),
              lambda *a: tuple(ops.eltmax_backward(list(a[:-1]), ops.eltmax_forward(list(a[:-1])),
                                                   a[-1])),
              [rng.standard_normal(shape) for _ in range(inputs)], wrt=list(range(inputs)),
              rng=rng)


def test_eltmax_ties_reach_every_input():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    b = np.array([1.0, 5.0, 0.0], np.float32)
    y = ops.eltmax_forward([a, b])
    da, db = ops.eltmax_backward([a, b], y, np.ones(3, np.float32))
    np.testing.assert_array_equal(da, [1, 0, 1])
    np.testing.assert_array_equal(db, [1, 1, 0])


@pytest.mark.parametrize("shapes", [[(2, 3)], [(1, 4), (1, 2, 3, 1)], [(3, 5), (3, 2), (3, 4, 2)]])
def test_concat(rng, shapes):
    xs = f32(*[rng.standard_normal(s) for s in shapes])
    y = ops.concat_forward(xs)
    assert_close(y, ref.concat(xs), what="y")
    dy = f32(rng.standard_normal(y.shape))[0]
    dxs = ops.concat_backward(dy, shapes)
    for got, want in zip(dxs, ref.concat_backward(dy, shapes)):
        assert got.shape == want.shape
        assert_close(got, want, what="dx")
    gradcheck(lambda *a: ops.concat_forward(list(a)),
              lambda *a: tuple(ops.concat_backward(a[-1], shapes)),
              [rng.standard_normal(s) for s in shapes], wrt=list(range(len(shapes))), rng=rng)


def test_bad_arguments():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="eltsum_forward: xs\\[1\\] must have the shape"):
        ops.eltsum_forward([a, np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match="eltsum_forward: 2 inputs need 2 coeffs"):
        ops.eltsum_forward([a, a], [1.0])
    with pytest.raises(ValueError, match="eltmax_forward: xs must be a non-empty list"):
        ops.eltmax_forward([])
    with pytest.raises(ValueError, match="concat_forward: xs\\[1\\] must have 2 samples"):
        ops.concat_forward([a, np.zeros((3, 3), np.float32)])
    with pytest.raises(ValueError, match="concat_backward: shapes hold 5 features per sample but dy has 6"):
        ops.concat_backward(np.zeros((2, 6), np.float32), [(2, 3), (2, 2)])


@pytest.mark.parametrize("shape", [(1, 3), (2, 5, 3, 7), (4, 17, 6, 5)])
def test_bias_add(rng, shape):
    x, b = f32(rng.standard_normal(shape), rng.standard_normal(shape[1:]))
    assert_close(ops.bias_add_forward(x, b), ref.bias_add(x, b), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    assert_close(ops.bias_add_backward(dy), ref.bias_add_backward(dy), what="db")
    gradcheck(lambda x, b: ops.bias_add_forward(x, b),
              lambda x, b, dy: (dy.copy(), ops.bias_add_backward(dy)),
              [rng.standard_normal(shape), rng.standard_normal(shape[1:])], wrt=[0, 1], rng=rng)


def test_bias_add_errors():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="bias_add_forward: b must have the shape"):
        ops.bias_add_forward(x, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="b is float64"):
        ops.bias_add_forward(x, np.zeros((3, 4)))
