"""Contrast normalisation within each map (cuda-convnet's cnorm): forward against the reference,
backward (exact, through the local mean) by finite differences in float64 and by a float64
numerical Jacobian-vector product of the reference."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import rnorm as ref

PARAMS = [dict(size=3, scale=4.0, pow=0.75, min_div=1.0),
          dict(size=4, scale=8.0, pow=0.6, min_div=2.0),
          dict(size=5, scale=0.001, pow=0.75, min_div=1.0)]


@pytest.mark.parametrize("shape", [(1, 2, 5, 4), (2, 3, 6, 6), (1, 1, 1, 5)])
@pytest.mark.parametrize("params", PARAMS)
def test_cnorm_forward_matches_reference(rng, shape, params):
    x = f32(rng.standard_normal(shape) * 2)[0]
    assert_close(ops.cnorm_forward(x, **params), ref.cnorm_forward(x, **params), what="y")


@pytest.mark.parametrize("params", PARAMS)
def test_cnorm_gradcheck(rng, params):
    gradcheck(lambda x: ops.cnorm_forward(x, **params),
              lambda x, dy: (ops.cnorm_backward(x, ops.cnorm_forward(x, **params), dy,
                                                **params),),
              [rng.standard_normal((2, 2, 5, 4)) * 2], wrt=[0], rng=rng, samples=40)


def test_cnorm_float32_backward_matches_reference_derivative(rng):
    """Our float32 backward against central differences of the float64 reference forward."""
    params = PARAMS[0]
    x = rng.standard_normal((1, 2, 4, 5)) * 2
    dy = rng.standard_normal(x.shape)
    h, numeric = 1e-6, np.empty_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = ((ref.cnorm_forward(up, **params) - ref.cnorm_forward(down, **params))
                        * dy).sum() / (2 * h)
    x32, dy32 = f32(x, dy)
    got = ops.cnorm_backward(x32, ops.cnorm_forward(x32, **params), dy32, **params)
    assert_close(got, numeric, what="dx")


def test_cnorm_of_a_constant_map_is_x_over_k_pow():
    x = np.full((1, 1, 4, 4), 3.0, np.float32)  # no deviation from the mean anywhere
    np.testing.assert_allclose(ops.cnorm_forward(x, size=3, scale=5.0, pow=0.75, min_div=2.0),
                               3.0 / 2.0 ** 0.75, rtol=1e-6)
