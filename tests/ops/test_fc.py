"""Fully connected layer against the reference and finite differences."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import fc as ref

CASES = [((1, 7), 3), ((5, 13), 1), ((4, 3, 5, 2), 6), ((33, 48), 10)]


@pytest.mark.parametrize("xs, m", CASES)
def test_fc_matches_reference(rng, xs, m):
    k = int(np.prod(xs[1:]))
    x, w, b = f32(rng.standard_normal(xs), rng.standard_normal((m, k)), rng.standard_normal(m))
    y = ops.fc_forward(x, w, b)
    assert y.shape == (xs[0], m)
    assert_close(y, ref.forward(x, w, b), what="y")
    assert_close(ops.fc_forward(x, w), ref.forward(x, w, None), what="y without bias")
    dy = f32(rng.standard_normal(y.shape))[0]
    dx, dw, db = ops.fc_backward(x, w, dy)
    assert dx.shape == x.shape
    for got, want, name in zip((dx, dw, db), ref.backward(x, w, dy), ("dx", "dw", "db")):
        assert_close(got, want, what=name)


@pytest.mark.parametrize("xs, m", CASES)
def test_fc_gradcheck(rng, xs, m):
    k = int(np.prod(xs[1:]))
    inputs = [rng.standard_normal(xs), rng.standard_normal((m, k)), rng.standard_normal(m)]
    gradcheck(lambda x, w, b: ops.fc_forward(x, w, b),
              lambda x, w, b, dy: ops.fc_backward(x, w, dy), inputs, wrt=[0, 1, 2], rng=rng)
