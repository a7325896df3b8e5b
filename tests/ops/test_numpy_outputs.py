"""convnet.ops hands numpy arrays to the core as tensors over the same memory (DLPack): the results
are still fresh, writeable arrays of the inputs' dtype that share no memory with the inputs, for
float32 and float64, and the inputs are left as they were."""

import numpy as np
import pytest

import convnet.ops as ops

POOL = dict(mode="max", size=3, stride=2)

# op -> call on (x (2, 4, 7, 7), w (3, 4, 3, 3), fx (3, 5), fw (4, 5)) returning its results.
CALLS = {
    "conv_backward": lambda x, w, fx, fw: ops.conv_backward(x, w, ops.conv_forward(x, w)),
    "fc_backward": lambda x, w, fx, fw: ops.fc_backward(fx, fw, ops.fc_forward(fx, fw)),
    "neuron_backward": lambda x, w, fx, fw: [ops.neuron_backward(x, x, x, "tanh[1,1]")],
    "lrn_backward": lambda x, w, fx, fw: [ops.lrn_backward(x, x, x)],
    "pool_backward": lambda x, w, fx, fw: [
        ops.pool_backward(x, *[ops.pool_forward(x, **POOL)] * 2, **POOL)],
    "eltmax_backward": lambda x, w, fx, fw: ops.eltmax_backward([x, x], x, x),
    "concat_backward": lambda x, w, fx, fw: ops.concat_backward(fx, [fx.shape]),
    "bias_add_forward": lambda x, w, fx, fw: [ops.bias_add_forward(x, x[0])],
    "dropout_forward": lambda x, w, fx, fw: [ops.dropout_forward(x, seed=3)],
    "softmax_logloss": lambda x, w, fx, fw: [ops.softmax_logloss(fx, [0, 1, 2], topk=1).dx],
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", sorted(CALLS))
def test_results_are_fresh_arrays(op, dtype):
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(s).astype(dtype) for s in ((2, 4, 7, 7), (3, 4, 3, 3),
                                                               (3, 5), (4, 5))]
    before = [a.copy() for a in inputs]
    results = CALLS[op](*inputs)
    for r in results:
        assert isinstance(r, np.ndarray) and r.dtype == dtype and r.flags.writeable
        assert r.flags.c_contiguous and np.isfinite(r).all()
        assert not any(np.shares_memory(r, a) for a in inputs), "a result aliases an input"
    for i, r in enumerate(results):
        assert not any(np.shares_memory(r, other) for other in results[i + 1:])
    for a, b in zip(inputs, before):
        np.testing.assert_array_equal(a, b)


def test_dropout_mask_is_its_own_uint8_array():
    mask = ops.dropout_mask((3, 5), p=0.5, seed=1, step=2)
    assert mask.dtype == np.uint8 and mask.shape == (3, 5) and mask.flags.writeable
    assert set(np.unique(mask)) <= {0, 1}
    np.testing.assert_array_equal(ops.dropout_mask((15,), p=0.5, seed=1, step=2), mask.ravel())
    assert ops.dropout_mask((0, 4), p=0.5, seed=1, step=2).shape == (0, 4)
