"""The paper's SGD update, in place, against the reference."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32
from reference import sgd as ref


@pytest.mark.parametrize("shape", [(1,), (96, 3, 11, 11), (7, 13)])
def test_sgd_matches_reference_over_several_steps(rng, shape):
    w, v = f32(rng.standard_normal(shape), rng.standard_normal(shape) * 0.1)
    w_ref, v_ref = w.astype(np.float64), v.astype(np.float64)
    hyper = dict(eps=0.01, mom=0.9, wc=0.0005)
    for _ in range(4):
        grad = f32(rng.standard_normal(shape))[0]
        w_id, v_id = id(w), id(v)
        assert ops.sgd_update(w, grad, v, **hyper) is None
        assert id(w) == w_id and id(v) == v_id
        w_ref, v_ref = ref.update(w_ref, grad, v_ref, **hyper)
    assert_close(w, w_ref, what="w")
    assert_close(v, v_ref, what="v")


def test_sgd_is_the_papers_rule():
    w = np.array([1.0, -2.0], np.float32)
    v = np.array([0.5, 0.0], np.float32)
    g = np.array([10.0, 1.0], np.float32)
    ops.sgd_update(w, g, v, eps=0.1, mom=0.9, wc=0.5)
    # v = 0.9 v - 0.5*0.1 w - 0.1 g
    np.testing.assert_allclose(v, [0.45 - 0.05 - 1.0, 0.0 + 0.1 - 0.1], rtol=1e-6)
    np.testing.assert_allclose(w, [1.0 - 0.6, -2.0], rtol=1e-6)


def test_sgd_needs_writeable_separate_buffers():
    w = np.zeros(4, np.float32)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="sgd_update: v .*writeable"):
        ops.sgd_update(w, np.zeros(4, np.float32), ro, eps=0.1, mom=0.9, wc=0.0)
    with pytest.raises(ValueError, match="sgd_update: w and v"):
        ops.sgd_update(w, np.zeros(4, np.float32), w, eps=0.1, mom=0.9, wc=0.0)
