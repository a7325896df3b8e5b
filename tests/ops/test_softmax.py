"""Softmax, its backward pass and the log-loss with top-k errors."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import softmax as ref

SHAPES = [(1, 2), (5, 10), (7, 1000), (3, 1)]


@pytest.mark.parametrize("shape", SHAPES)
def test_softmax_matches_reference(rng, shape):
    x = f32(rng.standard_normal(shape) * 5)[0]
    y = ops.softmax_forward(x)
    assert_close(y, ref.forward(x), what="probs")
    dy = f32(rng.standard_normal(shape))[0]
    assert_close(ops.softmax_backward(y, dy), ref.backward(y.astype(np.float64), dy), what="dx")


def test_softmax_gradcheck(rng):
    gradcheck(lambda x: ops.softmax_forward(x),
              lambda x, dy: (ops.softmax_backward(ops.softmax_forward(x), dy),),
              [rng.standard_normal((4, 7))], wrt=[0], rng=rng)


@pytest.mark.parametrize("shape, topk", [((1, 2), 1), ((9, 10), 5), ((6, 1000), 5), ((4, 3), 2)])
def test_logloss_matches_reference(rng, shape, topk):
    x = f32(rng.standard_normal(shape) * 3)[0]
    labels = rng.integers(0, shape[1], size=shape[0])
    out = ops.softmax_logloss(x, labels, topk=topk)
    probs, loss, dx, top1, topk_err = ref.logloss(x, labels, topk)
    assert_close(out.probs, probs, what="probs")
    assert out.loss == pytest.approx(loss, rel=1e-5)
    assert_close(out.dx, dx, what="dx")
    assert (out.top1_errors, out.topk_errors) == (top1, topk_err)


def test_logloss_gradcheck(rng):
    labels = np.array([2, 0, 4])
    gradcheck(lambda x: np.array([ops.softmax_logloss(x, labels).loss]),
              lambda x, dy: (ops.softmax_logloss(x, labels).dx * dy[0],),
              [rng.standard_normal((3, 5))], wrt=[0], rng=rng)


def test_topk_counts_and_ties():
    x = np.log(np.array([[0.5, 0.3, 0.2],     # label 0: correct at 1
                         [0.5, 0.3, 0.2],     # label 2: two classes above -> top-2 error
                         [0.4, 0.4, 0.2],     # label 1: tie with class 0, none strictly above
                         [0.1, 0.6, 0.3]]), dtype=np.float32)
    labels = np.array([0, 2, 1, 2], dtype=np.float32)  # float labels, as cuda-convnet stores them
    out = ops.softmax_logloss(x, labels, topk=2)
    assert out.top1_errors == 2  # samples 1 and 3
    assert out.topk_errors == 1  # sample 1
    _, _, _, top1, topk = ref.logloss(x, labels, 2)
    assert (top1, topk) == (2, 1)


def test_logloss_stays_finite_when_a_probability_underflows():
    x = np.array([[0.0, 200.0]], np.float32)
    out = ops.softmax_logloss(x, [0], topk=1)
    assert out.loss == pytest.approx(200.0, rel=1e-6)
    assert np.isfinite(out.dx).all()
