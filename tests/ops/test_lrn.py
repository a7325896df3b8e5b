"""Cross-map LRN (the paper's form and cuda-convnet's cmrnorm) against the reference and finite
differences."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import lrn as ref

SHAPES = [(1, 7, 5, 4), (2, 3, 3, 6), (2, 48, 2, 3), (1, 5, 1, 1)]
# Large alpha makes the normalisation matter (with 1e-4 the output is almost x / k^beta).
PAPER = [dict(size=5, alpha=1e-4, beta=0.75, k=2.0), dict(size=3, alpha=0.3, beta=0.75, k=1.0),
         dict(size=4, alpha=0.2, beta=0.6, k=2.0), dict(size=7, alpha=0.5, beta=1.3, k=0.5)]
CMR = [dict(size=5, scale=0.0005, pow=0.75, min_div=2.0),
       dict(size=4, scale=1.0, pow=0.75, min_div=1.0),
       dict(size=3, scale=1.5, pow=0.5, min_div=1.0, blocked=True),
       dict(size=2, scale=0.8, pow=0.9, min_div=1.5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("params", PAPER)
def test_paper_lrn_matches_reference(rng, shape, params):
    x = f32(rng.standard_normal(shape) * 3)[0]
    y = ops.lrn_forward(x, **params)
    assert_close(y, ref.paper_forward(x, **params), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    assert_close(ops.lrn_backward(x, y, dy, **params), ref.paper_backward(x, dy, **params),
                 what="dx")


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("params", CMR)
def test_cmrnorm_matches_reference(rng, shape, params):
    x = f32(rng.standard_normal(shape) * 3)[0]
    y = ops.cmrnorm_forward(x, **params)
    assert_close(y, ref.cmrnorm_forward(x, **params), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    assert_close(ops.cmrnorm_backward(x, y, dy, **params), ref.cmrnorm_backward(x, dy, **params),
                 what="dx")


@pytest.mark.parametrize("params", PAPER)
def test_paper_lrn_gradcheck(rng, params):
    gradcheck(lambda x: ops.lrn_forward(x, **params),
              lambda x, dy: (ops.lrn_backward(x, ops.lrn_forward(x, **params), dy, **params),),
              [rng.standard_normal((2, 7, 3, 2)) * 3], wrt=[0], rng=rng)


@pytest.mark.parametrize("params", CMR)
def test_cmrnorm_gradcheck(rng, params):
    gradcheck(lambda x: ops.cmrnorm_forward(x, **params),
              lambda x, dy: (ops.cmrnorm_backward(x, ops.cmrnorm_forward(x, **params), dy,
                                                  **params),),
              [rng.standard_normal((1, 9, 2, 3)) * 3], wrt=[0], rng=rng)


def test_cmrnorm_odd_size_equals_paper_lrn(rng):
    # AlexNet's layer in cuda-convnet's terms: cmrnorm size=5, scale=0.0005, pow=0.75, minDiv=2
    # is the paper's k=2, n=5, alpha=1e-4, beta=0.75.
    x = f32(rng.standard_normal((2, 16, 4, 3)) * 10)[0]
    a = ops.cmrnorm_forward(x, size=5, scale=0.0005, pow=0.75, min_div=2.0)
    b = ops.lrn_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0)
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_even_size_windows_differ():
    # size 4: the paper's formula sums maps i-2..i+2 (5 maps), cmrnorm sums i-2..i+1 (4 maps).
    x = np.zeros((1, 6, 1, 1), np.float32)
    x[0, 4] = 10.0
    paper = ops.lrn_forward(x, size=4, alpha=1.0, beta=1.0, k=1.0)
    cmr = ops.cmrnorm_forward(x, size=4, scale=4.0, pow=1.0, min_div=1.0)
    # Map 2's window reaches map 4 in the paper's form only.
    assert paper[0, 2, 0, 0] == 0 and cmr[0, 2, 0, 0] == 0  # x[2] = 0 either way
    x[0, 2] = 1.0
    paper = ops.lrn_forward(x, size=4, alpha=1.0, beta=1.0, k=1.0)
    cmr = ops.cmrnorm_forward(x, size=4, scale=4.0, pow=1.0, min_div=1.0)
    np.testing.assert_allclose(paper[0, 2, 0, 0], 1.0 / (1 + 1 + 100), rtol=1e-6)
    np.testing.assert_allclose(cmr[0, 2, 0, 0], 1.0 / (1 + 1), rtol=1e-6)


def test_blocked_windows_stay_in_their_block():
    x = np.zeros((1, 6, 1, 1), np.float32)
    x[0, 3] = 5.0  # block [3, 6) with size 3
    x[0, 2] = 1.0  # block [0, 3)
    y = ops.cmrnorm_forward(x, size=3, scale=3.0, pow=1.0, min_div=1.0, blocked=True)
    np.testing.assert_allclose(y[0, 2, 0, 0], 1.0 / (1 + 1), rtol=1e-6)
