"""Dropout: the Philox stream against Random123's known answers and an independent Python
implementation, mask statistics, and the classic / inverted maps."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import dropout as ref

# Random123's kat_vectors for philox4x32-10: counter, key -> output.
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("counter, key, expected", KNOWN_ANSWERS)
def test_reference_philox_known_answers(counter, key, expected):
    assert ref.philox4x32_10(counter, key) == expected


@pytest.mark.parametrize("shape, p, seed, step, layer", [
    ((7,), 0.5, 0, 0, 0), ((3, 5, 2), 0.3, 12345, 7, 2), ((2, 4097), 0.9, 2**40 + 3, 2**33 + 1, 5),
    ((1,), 0.5, 1, 1, 1),
])
def test_mask_equals_reference_bit_for_bit(shape, p, seed, step, layer):
    mask = ops.dropout_mask(shape, p=p, seed=seed, step=step, layer=layer)
    assert mask.dtype == np.uint8 and mask.shape == shape
    np.testing.assert_array_equal(mask, ref.mask(shape, p, seed, step, layer))


def test_keep_fraction_is_one_minus_p():
    n = 200_000
    for p in (0.1, 0.5, 0.8):
        kept = ops.dropout_mask((n,), p=p, seed=3, step=11).mean()
        sigma = np.sqrt(p * (1 - p) / n)
        assert abs(kept - (1 - p)) < 6 * sigma
    assert ops.dropout_mask((1000,), p=0.0, seed=1, step=1).all()


def test_mask_depends_on_seed_step_and_layer_only():
    base = dict(p=0.5, seed=9, step=4, layer=1)
    m = ops.dropout_mask((64, 33), **base)
    np.testing.assert_array_equal(m, ops.dropout_mask((64, 33), **base))
    for change in (dict(seed=10), dict(step=5), dict(layer=2)):
        other = ops.dropout_mask((64, 33), **{**base, **change})
        assert (other != m).mean() > 0.3
    # The mask is a function of the flat index: a reshaped tensor gets the same mask.
    np.testing.assert_array_equal(ops.dropout_mask((33, 64), **base).ravel(), m.ravel())


@pytest.mark.parametrize("inverted", [False, True])
@pytest.mark.parametrize("train", [True, False])
def test_forward_and_backward_match_reference(rng, train, inverted):
    shape, args = (3, 5, 4, 7), dict(p=0.4, seed=77, step=5, layer=3)
    x = f32(rng.standard_normal(shape))[0]
    y = ops.dropout_forward(x, train=train, inverted=inverted, **args)
    want = ref.forward(x, args["p"], args["seed"], args["step"], args["layer"], train, inverted)
    assert_close(y, want, what="y")
    # Backward is the same linear map applied to dy (and so uses the same mask).
    dy = f32(rng.standard_normal(shape))[0]
    dx = ops.dropout_backward(dy, train=train, inverted=inverted, **args)
    assert_close(dx, ref.forward(dy, args["p"], args["seed"], args["step"], args["layer"], train,
                                 inverted), what="dx")


def test_paper_test_time_scaling(rng):
    x = f32(rng.standard_normal((4, 10)))[0]
    np.testing.assert_allclose(ops.dropout_forward(x, p=0.5, train=False), x * 0.5, rtol=1e-7)
    np.testing.assert_array_equal(ops.dropout_forward(x, p=0.5, train=False, inverted=True), x)
    # Classic training keeps values unscaled; inverted scales kept values by 1/(1-p).
    y = ops.dropout_forward(x, p=0.5, seed=1, step=2)
    kept = y != 0
    np.testing.assert_array_equal(y[kept], x[kept])
    yi = ops.dropout_forward(x, p=0.5, seed=1, step=2, inverted=True)
    np.testing.assert_allclose(yi[kept], 2 * x[kept], rtol=1e-7)


def test_gradcheck(rng):
    args = dict(p=0.5, seed=5, step=3, layer=0, inverted=True)
    gradcheck(lambda x: ops.dropout_forward(x, **args),
              lambda x, dy: (ops.dropout_backward(dy, **args),),
              [rng.standard_normal((2, 3, 4))], wrt=[0], rng=rng)
