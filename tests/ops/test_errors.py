"""Bad input to every op gives a ValueError naming the op and the argument, never a crash."""

import numpy as np
import pytest

import convnet.ops as ops

F = np.float32


def z(*shape, dtype=F):
    return np.zeros(shape, dtype)


def strided(*shape):
    return np.zeros(shape[:-1] + (shape[-1] * 2,), F)[..., ::2]


X4, W4 = z(2, 4, 6, 6), z(3, 4, 3, 3)
CASES = [
    # (call, pattern the message must match)
    (lambda: ops.conv_forward(X4.astype(np.int32), W4), "conv_forward: x must be float32"),
    (lambda: ops.conv_forward(X4, W4.astype(np.float64)), "conv_forward: w is float64"),
    (lambda: ops.conv_forward(z(4, 6, 6), W4), "conv_forward: x must have 4 dimensions"),
    (lambda: ops.conv_forward(X4, z(3, 4, 3)), "conv_forward: w must have 4 dimensions"),
    (lambda: ops.conv_forward(X4, z(3, 5, 3, 3)), "conv_forward: w must have shape"),
    (lambda: ops.conv_forward(strided(2, 4, 6, 6), W4), "conv_forward: x must be C-contiguous"),
    (lambda: ops.conv_forward(X4, W4, z(4)), "conv_forward: b must have the shape"),
    (lambda: ops.conv_forward(X4, W4, stride=0), "conv_forward: stride must be >= 1"),
    (lambda: ops.conv_forward(X4, W4, padding=-1), "conv_forward: padding must be >= 0"),
    (lambda: ops.conv_forward(X4, W4, padding=(1, 2, 3)), "conv_forward: padding must be"),
    (lambda: ops.conv_forward(X4, z(3, 2, 3, 3), groups=2), "conv_forward: groups=2 must divide"),
    (lambda: ops.conv_forward(X4, z(4, 4, 9, 3)), "conv_forward: the 9-wide kernel"),
    (lambda: ops.conv_forward(X4, W4, rule="ceil"), "conv_forward: rule must be"),
    (lambda: ops.conv_forward([[1.0]], W4), "conv_forward: x must be a numpy array"),
    (lambda: ops.conv_backward(X4, W4, z(2, 3, 5, 5)), "conv_backward: dy must have the shape"),
    (lambda: ops.conv_output_size(5, 7), "kernel 7 does not fit"),
    (lambda: ops.fc_forward(z(2, 5), z(3, 4)), "fc_forward: w must have shape"),
    (lambda: ops.fc_forward(z(5), z(3, 5)), "fc_forward: x must have at least 2"),
    (lambda: ops.fc_backward(z(2, 5), z(3, 5), z(2, 4)), "fc_backward: dy must have the shape"),
    (lambda: ops.neuron_forward(z(3), "nosuch"), "unknown neuron 'nosuch'"),
    (lambda: ops.neuron_forward(z(3), "tanh[1]"), "'tanh' takes 2 parameter"),
    (lambda: ops.neuron_backward(z(3), z(3), z(4), "relu"), "neuron_backward: dy must have"),
    (lambda: ops.neuron_forward(z(3, dtype=np.float16), "relu"), "neuron_forward: x must be"),
    (lambda: ops.lrn_forward(z(2, 3, 4)), "lrn_forward: x must have 4 dimensions"),
    (lambda: ops.lrn_forward(X4, size=0), "lrn_forward: size must be >= 1"),
    (lambda: ops.lrn_forward(X4, alpha=-1), "lrn_forward: alpha must be >= 0"),
    (lambda: ops.cmrnorm_forward(X4, size=3, scale=1, pow=1, blocked="yes"),
     "cmrnorm_forward: blocked"),
    (lambda: ops.lrn_backward(X4, X4, z(2, 4, 6, 5)), "lrn_backward: dy must have the shape"),
    (lambda: ops.pool_forward(X4, mode="min", size=3, stride=2), "pool_forward: mode must be"),
    (lambda: ops.pool_forward(X4, mode="max", size=0, stride=2), "pool_forward: size must be"),
    (lambda: ops.pool_forward(X4, mode="max", size=3, stride=0), "pool_forward: stride must be"),
    (lambda: ops.pool_forward(X4, mode="max", size=3, stride=2, outputs=-1),
     "pool_forward: outputs must be >= 0"),
    (lambda: ops.pool_backward(X4, z(2, 4, 3, 3), z(2, 4, 2, 3), mode="max", size=3, stride=2),
     "pool_backward: dy must have the shape"),
    (lambda: ops.dropout_forward(z(3), p=1.0), "dropout_forward: p must be < 1"),
    (lambda: ops.dropout_forward(z(3), p=-0.1), "dropout_forward: p must be >= 0"),
    (lambda: ops.dropout_forward(z(3), seed=-1), "dropout_forward: seed must be >= 0"),
    (lambda: ops.dropout_backward(z(3), step=2**64), "dropout_backward: seed and step"),
    (lambda: ops.dropout_mask((3, -1), p=0.5, seed=0, step=0), "dropout_mask: shape"),
    (lambda: ops.softmax_forward(z(3)), "softmax_forward: x must have 2 dimensions"),
    (lambda: ops.softmax_logloss(z(2, 3), [0, 3]), "softmax_logloss: label 3 is outside"),
    (lambda: ops.softmax_logloss(z(2, 3), [0]), "softmax_logloss: labels must have shape"),
    (lambda: ops.softmax_logloss(z(2, 3), [0.5, 1]), "softmax_logloss: float labels"),
    (lambda: ops.softmax_logloss(z(2, 3), ["a", "b"]), "softmax_logloss: labels must be"),
    (lambda: ops.softmax_logloss(z(2, 3), [0, 1], topk=0), "softmax_logloss: topk must be"),
    (lambda: ops.sgd_update(z(3), z(4), z(3), eps=1, mom=1, wc=0), "sgd_update: grad must have"),
    (lambda: ops.sgd_update(z(3), z(3), z(3), eps="x", mom=1, wc=0), "sgd_update: eps must be"),
    (lambda: ops.sgd_update(z(3), z(3), strided(3), eps=1, mom=1, wc=0),
     "sgd_update: v must be C-contiguous"),
]


@pytest.mark.parametrize("call, pattern", CASES, ids=[c[1][:48] for c in CASES])
def test_bad_input_raises_value_error(call, pattern):
    with pytest.raises(ValueError, match=pattern):
        call()


def test_core_rejects_bad_buffers_without_crashing():
    # The raw bindings are a second line of defence: they too refuse wrong buffers.
    from convnet import _core
    with pytest.raises(ValueError, match="conv_forward: output 7x7 has windows"):
        _core.conv_forward(X4, W4, None, z(2, 3, 7, 7), 1, 1, 0, 0, 1)
    with pytest.raises(ValueError, match="conv_forward: y must have shape"):
        _core.conv_forward(X4, W4, None, z(2, 5, 4, 4), 1, 1, 0, 0, 1)
    with pytest.raises(ValueError, match="must be float32 or float64"):
        _core.neuron_forward(z(3, dtype=np.int64), z(3), "relu", 1.0, 0.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.sgd_update(strided(4), z(4), z(4), 0.1, 0.9, 0.0)
    with pytest.raises(ValueError, match="writeable"):
        ro = z(3)
        ro.flags.writeable = False
        _core.neuron_forward(z(3), ro, "relu", 1.0, 0.0)


def test_float64_is_accepted_and_preserved():
    y = ops.conv_forward(X4.astype(np.float64), W4.astype(np.float64))
    assert y.dtype == np.float64
