"""Fully connected: the float64 reference and finite differences on 2-D inputs and on the shared
4-D odd shapes (read as (N, K) in C order), with and without bias."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import ODD_SHAPES, assert_close, check_gpu_vs_cpu, check_op, f32, gradcheck
from reference import fc as ref

# (x shape, outputs M): a single sample, a single output, the 4-D odd shapes, and a wider GEMM.
CASES = [((1, 7), 3), ((5, 13), 1), ((33, 48), 10)] + [(s, 6) for s in ODD_SHAPES]


@pytest.mark.parametrize("xs, m", CASES,
                         ids=[f"x{'x'.join(map(str, c[0]))}-m{c[1]}" for c in CASES])
def test_fc_three_oracles(rng, xs, m):
    k = int(np.prod(xs[1:]))
    inputs = [rng.standard_normal(xs), rng.standard_normal((m, k)), rng.standard_normal(m)]
    y, (dx, _, _) = check_op(
        lambda x, w, b: ops.fc_forward(x, w, b),
        lambda x, w, b, dy: ops.fc_backward(x, w, dy),
        lambda x, w, b: ref.forward(x, w, b),
        lambda x, w, b, dy: ref.backward(x, w, dy),
        inputs, rng=rng, wrt=(0, 1, 2), names=("dx", "dw", "db"))
    assert y.shape == (xs[0], m)
    assert dx.shape == xs


@pytest.mark.parametrize("xs, m", CASES[:3] + CASES[-1:])
def test_fc_without_bias(rng, xs, m):
    k = int(np.prod(xs[1:]))
    x, w = f32(rng.standard_normal(xs), rng.standard_normal((m, k)))
    assert_close(ops.fc_forward(x, w), ref.forward(x, w, None), what="y without bias")


def test_fc_4d_input_is_read_in_c_order(rng):
    # (N, C, H, W) is the same layer as its (N, C*H*W) reshape, forward and backward.
    x4 = f32(rng.standard_normal((2, 3, 4, 5)))[0]
    w, b = f32(rng.standard_normal((6, 60)), rng.standard_normal(6))
    x2 = x4.reshape(2, 60)
    np.testing.assert_array_equal(ops.fc_forward(x4, w, b), ops.fc_forward(x2, w, b))
    dy = f32(rng.standard_normal((2, 6)))[0]
    dx4, dw4, db4 = ops.fc_backward(x4, w, dy)
    dx2, dw2, db2 = ops.fc_backward(x2, w, dy)
    assert dx4.shape == x4.shape
    np.testing.assert_array_equal(dx4.reshape(2, 60), dx2)
    np.testing.assert_array_equal(dw4, dw2)
    np.testing.assert_array_equal(db4, db2)


def test_fc_is_pytorch_convention():
    # w is (outputs, inputs): y[n, m] = sum_k x[n, k] w[m, k] + b[m].
    x = np.array([[1.0, 2.0]], np.float32)
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    np.testing.assert_array_equal(ops.fc_forward(x, w, np.array([0, 0, 10], np.float32)),
                                  [[1.0, 2.0, 13.0]])


def test_reference_backward_matches_its_forward(rng):
    gradcheck(lambda x, w, b: ref.forward(x, w, b), lambda x, w, b, dy: ref.backward(x, w, dy),
              [rng.standard_normal((3, 2, 2, 2)), rng.standard_normal((4, 8)),
               rng.standard_normal(4)], wrt=[0, 1, 2], rng=rng)


@pytest.mark.gpu
def test_fc_gpu_matches_cpu(rng):
    x, w = f32(rng.standard_normal((8, 48)), rng.standard_normal((10, 48)))
    check_gpu_vs_cpu("fc_forward", ops.fc_forward, None, [x, w])
