"""Dropout: the numpy Philox4x32-10 reference against Random123's published known answers, the
library's mask against those answers and bit for bit against the reference, the keep fraction,
the (seed, step, layer) keying, and the classic and inverted maps at train and test time.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernels on device tensors, reached
through their bindings (csrc/bindings/dropout_softmax_sgd.cpp), against the CPU path and the
float64 reference: the mask bit for bit (written into canary bytes, so an unwritten byte or one
past the end shows; keys with words above 32 bits), forward and backward on odd shapes (batch 1,
sizes that are not multiples of 4), outputs poisoned with NaN before each launch so an element the
kernel fails to write cannot pass, backward with beta 0 (overwrite) and 1 (accumulate).
"""

import numpy as np
import pytest

import convnet.ops as ops
from gpu_helpers import accumulated, call, check, cpu, dev, exact, host, old_gradient, poisoned
from helpers import (FP32_REL_TOL, HAND_REL_TOL, ODD_SHAPES, assert_close, check_gpu_vs_cpu,
                     check_op, f32)
from reference import dropout as ref

# Random123's known-answer vectors (counter words 0-3, key words 0-1 -> output words 0-3), as
# cut from the Random123 distribution's kat_vectors file into DEShawResearch/Random123-Boost,
# libs/random/test/test_philox.cpp (the all-zero, all-one and pi-digit inputs, for 7 and 10
# rounds), plus single-bit counter and key words from the same distribution's
# examples/kat_vectors (as kept in girving/random123-manual), which pin the order of the words.
# One a line as the kat_vectors files write them, less the generator's name (philox4x32): the
# rounds, then the words in the order above, in hex.
KAT_VECTORS = """
10 00000000 00000000 00000000 00000000 00000000 00000000 6627e8d5 e169c58d bc57ac4c 9b00dbd8
10 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff 408f276d 41c83b0e a20bc7c6 6d5451fd
10 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0 d16cfe09 94fdcceb 5001e420 24126ea1
10 00000001 00000000 00000000 00000000 00000001 00000000 ac08141b dfc5ccbe 79c07a47 a7f66093
10 00000000 00000001 00000000 00000000 00000001 00000000 833ff8dc 225c963c 232b88b3 0b334b07
10 00000000 00000000 00000001 00000000 00000001 00000000 07071c12 428264b6 3909104b 6da2bda2
10 00000000 00000000 00000000 00000001 00000001 00000000 127bee41 1e047488 48842b20 0a393496
10 00000000 ffffffff 00000000 00000000 00000000 00000001 00e94a67 3524f44e 22995230 bb54df1e
10 00000000 00000000 80000000 00000000 00000000 ffffffff b6f48e28 f2fa9414 00b64f66 4810cdb4
10 00000000 00000000 00000000 80000000 00000000 80000000 f7a0b371 e51dc93d 56ce135d 1d4b5580
10 00000000 00000000 00000000 ffffffff 00000000 ffffffff 9f18bb20 62161056 7ea8c028 4c01fc6e
10 243f6a88 85a308d3 13198a2e 03707344 00000000 00000001 126514c3 d1898b69 da2707b3 6e6fb436
10 452821e6 38d01377 be5466cf 34e90c6c 00000000 80000000 94ca5566 14924b2f 28214292 59faeaee
 7 00000000 00000000 00000000 00000000 00000000 00000000 5f6fb709 0d893f64 4f121f81 4f730a48
 7 ffffffff ffffffff ffffffff ffffffff ffffffff ffffffff 5207ddc2 45165e59 4d8ee751 8c52f662
 7 243f6a88 85a308d3 13198a2e 03707344 a4093822 299f31d0 4dfccaba 190a87f0 c47362ba b6b5242a
"""


def _known_answers(rounds):
    """(counter, key, expected) word tuples of the KAT_VECTORS lines for `rounds`."""
    vectors = []
    for line in KAT_VECTORS.strip().splitlines():
        r, *words = line.split()
        if int(r) == rounds:
            w = tuple(int(word, 16) for word in words)
            vectors.append((w[:4], w[4:6], w[6:]))
    return vectors


KAT_10 = _known_answers(10)
KAT_7 = _known_answers(7)
# The vectors the op can reach: a small block index in counter word 0 (so a short tensor covers
# it); the others map to (seed, step, layer) as the spec keys them.
REACHABLE = [v for v in KAT_10 if v[0][0] < 4]

# A statistical bound in standard deviations: the seeds are fixed, so this is a one-off draw; 6
# sigma is a 2e-9 false-alarm rate for a fair generator, and a wrong threshold (p instead of
# 1 - p, a float32 threshold, an off-by-one word) sits far outside it at these sizes.
STAT_SIGMAS = 6


def _hexes(words):
    return " ".join(f"{w:08x}" for w in words)


@pytest.mark.parametrize("counter, key, expected", KAT_10, ids=lambda v: _hexes(v))
def test_reference_philox_known_answers(counter, key, expected):
    assert _hexes(ref.philox4x32_10(counter, key)) == _hexes(expected)


@pytest.mark.parametrize("counter, key, expected", KAT_7)
def test_reference_philox_known_answers_7_rounds(counter, key, expected):
    got = tuple(int(v) for v in ref.philox4x32(np.array(counter), key, rounds=7))
    assert _hexes(got) == _hexes(expected)


def test_reference_is_vectorised_consistently():
    counters = np.array([v[0] for v in KAT_10[3:7]])
    out = ref.philox4x32(counters, (1, 0))
    for row, (_, _, expected) in zip(out, KAT_10[3:7]):
        assert tuple(int(v) for v in row) == expected


@pytest.mark.parametrize("counter, key, expected", REACHABLE, ids=lambda v: _hexes(v))
def test_library_mask_reproduces_known_answers(counter, key, expected):
    # Element 4*block + j keeps iff word j < floor((1 - p) 2^32). With p = 1 - t/2^32 the threshold
    # is exactly t (every step exact in float64), so t = word + 1 keeps element j and t = word
    # drops it: the published words, read back through the op.
    block, seed = counter[0], key[0] | key[1] << 32
    step, layer = counter[1] | counter[2] << 32, counter[3]
    n = 4 * (block + 1)
    for j, word in enumerate(expected):
        for t, kept in ((word + 1, 1), (word, 0)):
            p = 1.0 - t / 2.0**32
            assert ref.threshold(p) == t
            m = ops.dropout_mask((n,), p=p, seed=seed, step=step, layer=layer)
            assert m[4 * block + j] == kept, (
                f"word {j} of block {block}: threshold {t:#x} vs published word {word:#x}")


@pytest.mark.parametrize("shape, p, seed, step, layer", [
    ((7,), 0.5, 0, 0, 0), ((1,), 0.5, 1, 1, 1), ((3, 5, 2), 0.3, 12345, 7, 2),
    ((2, 4097), 0.9, 2**40 + 3, 2**33 + 1, 5), ((5, 3), 0.0, 9, 9, 9),
    ((4, 4), 0.999, 2**64 - 1, 2**64 - 1, 2**32 - 1),
] + [(s, 0.37, 20 + i, 1000 * i, i) for i, s in enumerate(ODD_SHAPES)])
def test_mask_equals_reference_bit_for_bit(shape, p, seed, step, layer):
    mask = ops.dropout_mask(shape, p=p, seed=seed, step=step, layer=layer)
    assert mask.dtype == np.uint8 and mask.shape == shape
    np.testing.assert_array_equal(mask, ref.mask(shape, p, seed, step, layer))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_keep_fraction_is_one_minus_p(p):
    n = 200_000
    kept = ops.dropout_mask((n,), p=p, seed=3, step=11).mean()
    sigma = np.sqrt(p * (1 - p) / n)
    assert abs(kept - (1 - p)) < STAT_SIGMAS * sigma, (kept, 1 - p)


def test_p_zero_keeps_everything():
    assert ops.dropout_mask((1001,), p=0.0, seed=1, step=1).all()


def test_mask_depends_on_seed_step_and_layer():
    shape, base = (64, 33), dict(p=0.5, seed=9, step=4, layer=1)
    m = ops.dropout_mask(shape, **base)
    np.testing.assert_array_equal(m, ops.dropout_mask(shape, **base))  # same args, same mask
    n = m.size
    for change in (dict(seed=10), dict(step=5), dict(layer=2), dict(seed=9 + 2**32),
                   dict(step=4 + 2**32)):
        other = ops.dropout_mask(shape, **{**base, **change})
        # Independent masks at p = 0.5 differ in half the places.
        differ = (other != m).mean()
        assert abs(differ - 0.5) < STAT_SIGMAS * np.sqrt(0.25 / n), (change, differ)
    # The mask is a function of the flat index only: a reshaped tensor gets the same mask.
    np.testing.assert_array_equal(ops.dropout_mask((33, 64), **base).ravel(), m.ravel())


# Offsets around the CPU's 64-element groups and the GPU's 4-element blocks: a shard's first
# element in the middle of a block, at a group's start, just past it, and far on.
OFFSETS = [0, 1, 3, 4, 63, 64, 65, 130, 4096 * 7 + 5, 2**33 + 2]


@pytest.mark.parametrize("offset", OFFSETS)
@pytest.mark.parametrize("n", [1, 5, 64, 203])
def test_mask_at_an_offset_is_that_part_of_the_stream(offset, n):
    key = dict(p=0.45, seed=2**40 + 9, step=77, layer=3)
    mask = ops.dropout_mask((n,), **key, offset=offset)
    np.testing.assert_array_equal(mask, ref.mask((n,), **key, offset=offset))
    if offset < 10**6:   # and the slice of one longer mask from 0
        np.testing.assert_array_equal(mask, ops.dropout_mask((offset + n,), **key)[offset:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inverted", [False, True], ids=["classic", "inverted"])
def test_shards_at_their_offsets_make_the_whole_batch(rng, dtype, inverted):
    # A batch of 6 images of 5 x 7 x 3 (105 elements, not a multiple of 4 or 64) cut at images
    # 0, 1, 4: each shard at its offset gives exactly its part of the whole batch's dropout,
    # forward and backward (float32 takes the AVX-512 loop where a shard starts on a group).
    key = dict(p=0.4, seed=5, step=12, layer=2, inverted=inverted)
    x = rng.standard_normal((6, 5, 7, 3)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    whole_y, whole_dx = ops.dropout_forward(x, **key), ops.dropout_backward(dy, **key)
    per_image = x[0].size
    for lo, hi in ((0, 1), (1, 4), (4, 6)):
        offset = lo * per_image
        np.testing.assert_array_equal(ops.dropout_forward(x[lo:hi], **key, offset=offset),
                                      whole_y[lo:hi])
        np.testing.assert_array_equal(ops.dropout_backward(dy[lo:hi], **key, offset=offset),
                                      whole_dx[lo:hi])
    # 64 elements per image: shards start on whole groups.
    x = rng.standard_normal((5, 64)).astype(dtype)
    whole = ops.dropout_forward(x, **key)
    np.testing.assert_array_equal(ops.dropout_forward(x[2:], **key, offset=128), whole[2:])
    assert_close(whole, ref.forward(x, 0.4, 5, 12, 2, True, inverted), FP32_REL_TOL)


def test_an_offset_past_the_stream_is_refused():
    with pytest.raises(ValueError, match="stream positions past 2\\^34"):
        ops.dropout_mask((8,), p=0.5, seed=1, step=1, offset=2**34 - 4)


@pytest.mark.parametrize("shape", ODD_SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("inverted", [False, True], ids=["classic", "inverted"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "test"])
def test_dropout_three_oracles(rng, shape, train, inverted):
    args = dict(p=0.4, seed=77, step=5, layer=3, train=train, inverted=inverted)
    ref_args = [args[k] for k in ("p", "seed", "step", "layer", "train", "inverted")]
    check_op(lambda x: ops.dropout_forward(x, **args),
             lambda x, dy: (ops.dropout_backward(dy, **args),),
             lambda x: ref.forward(x, *ref_args),
             lambda x, dy: (ref.backward(dy, *ref_args),),
             [rng.standard_normal(shape)], rng=rng, names=("dx",))


def test_classic_and_inverted_at_train_and_test(rng):
    x = f32(rng.standard_normal((4, 10)) + 3.0)[0]  # nonzero everywhere
    args = dict(p=0.25, seed=1, step=2)
    mask = ops.dropout_mask(x.shape, **args).astype(bool)
    assert 0 < mask.sum() < mask.size
    # Classic (the paper): train keeps values unscaled; test multiplies by 1 - p.
    y = ops.dropout_forward(x, **args)
    np.testing.assert_array_equal(y[mask], x[mask])
    assert (y[~mask] == 0).all()
    assert_close(ops.dropout_forward(x, train=False, **args), x * 0.75, HAND_REL_TOL)
    # Inverted: train scales kept values by 1 / (1 - p); test is the identity.
    yi = ops.dropout_forward(x, inverted=True, **args)
    assert_close(yi[mask], x[mask] / 0.75, HAND_REL_TOL)
    assert (yi[~mask] == 0).all()
    np.testing.assert_array_equal(ops.dropout_forward(x, train=False, inverted=True, **args), x)


@pytest.mark.parametrize("inverted", [False, True])
def test_backward_uses_the_forward_mask(rng, inverted):
    # dx is nonzero exactly where y is, both where the mask keeps, and dx = dy * dy/dx.
    args = dict(p=0.5, seed=31, step=2**35 + 8, layer=4, inverted=inverted)
    x = f32(rng.standard_normal((3, 5, 4, 7)) + 5.0)[0]
    dy = f32(rng.standard_normal(x.shape) + 5.0)[0]
    y = ops.dropout_forward(x, **args)
    dx = ops.dropout_backward(dy, **args)
    mask = ops.dropout_mask(x.shape, p=0.5, seed=31, step=2**35 + 8, layer=4)
    np.testing.assert_array_equal(y != 0, mask == 1)
    np.testing.assert_array_equal(dx != 0, mask == 1)
    assert_close(dx, dy * (y / x), HAND_REL_TOL)
    # A different step is a different mask for the backward too.
    other = ops.dropout_backward(dy, **{**args, "step": args["step"] + 1})
    assert ((other != 0) != (dx != 0)).any()
    # At test time the backward is the same constant map as the forward.
    assert_close(ops.dropout_backward(dy, train=False, **args), dy if inverted else dy * 0.5,
                 HAND_REL_TOL)


@pytest.mark.gpu
def test_dropout_gpu_matches_cpu(rng):
    # Bit-exact masks on both sides are the point of the shared counter-based generator.
    check_gpu_vs_cpu("dropout_mask",
                     lambda: ops.dropout_mask((3, 1001), p=0.5, seed=7, step=9, layer=1), None, [],
                     tol=0.0)


# ---- the CUDA kernels ------------------------------------------------------------------------

GPU_KEYS = [dict(p=0.5, seed=7, step=9, layer=1),
            dict(p=0.2, seed=2**40 + 3, step=2**33 + 1, layer=5)]  # words above 32 bits


@pytest.mark.gpu
@pytest.mark.parametrize("n", [1, 3, 4, 5, 105, 3003, 100_003])
@pytest.mark.parametrize("key", GPU_KEYS, ids=["p0.5", "p0.2-wide-key"])
def test_dropout_mask_bit_exact(n, key):
    # The point of the shared counter-based generator: the GPU's mask is the CPU's, bit for bit.
    # The mask goes into a buffer of canary bytes (0xAB, neither 0 nor 1) rounded up to whole
    # words, so an unwritten byte, or one written past n, shows.
    words = (n + 3) // 4
    storage = dev(np.full(words * 4, 0xAB, dtype=np.uint8).view(np.float32))
    call("dropout_mask", storage, n, key["p"], key["seed"], key["step"], key["layer"])
    got = host(storage).view(np.uint8)
    exact(got[:n], ops.dropout_mask((n,), **key), "GPU mask vs CPU mask")
    exact(got[:n], ref.mask((n,), **key), "GPU mask vs reference mask")
    assert (got[n:] == 0xAB).all(), "the mask kernel wrote past its n bytes"


GPU_SHAPES = [(1,), (3, 5), (1, 3, 7, 5), (2, 5, 6, 9), (2, 17, 13, 11), (3, 96, 13, 13)]
GPU_MODES = [(True, False), (True, True), (False, False), (False, True)]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("train, inverted", GPU_MODES,
                         ids=["train", "train-inverted", "test", "test-inverted"])
def test_dropout_forward_backward(shape, train, inverted, rng):
    key = dict(p=0.3, seed=11, step=12345, layer=3)
    kw = dict(**key, train=train, inverted=inverted)
    args = (key["p"], key["seed"], key["step"], key["layer"], train, inverted)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)

    ty = poisoned(shape)
    call("dropout_forward", dev(x), ty, *args)
    y = host(ty)
    # One float32 multiply by the same factor on both sides: equal bits.
    exact(y, ops.dropout_forward(x, **kw), "y vs CPU")
    assert_close(y, ref.forward(x, **kw), FP32_REL_TOL, "y vs reference")
    if train:
        exact(y != 0, ref.mask(shape, **key) == 1, "kept elements vs reference mask")

    tdx = poisoned(shape)
    call("dropout_backward", dev(dy), tdx, *args, beta=0.0)
    exact(host(tdx), ops.dropout_backward(dy, **kw), "dx vs CPU")
    assert_close(host(tdx), ref.backward(dy, **kw), FP32_REL_TOL, "dx vs reference")

    old = old_gradient(shape, 1.0, rng)
    tdx, cdx = dev(old), cpu(old)
    call("dropout_backward", dev(dy), tdx, *args, beta=1.0)
    call("dropout_backward", cpu(dy), cdx, *args, beta=1.0)
    check(host(tdx), cdx.numpy(), accumulated(old, 1.0, ref.backward(dy, **kw)),
          "dx accumulated")


@pytest.mark.gpu
@pytest.mark.parametrize("offset", [1, 3, 4, 65, 4096 * 7 + 5])
@pytest.mark.parametrize("n", [1, 6, 105, 3003])
def test_dropout_at_an_offset_bit_exact(offset, n, rng):
    # A data-parallel shard's dropout: the mask, forward and backward at a stream offset (the
    # vector path only where the offset is a multiple of 4) equal the CPU's bit for bit.
    key = GPU_KEYS[1]
    words = (n + 3) // 4
    storage = dev(np.full(words * 4, 0xAB, dtype=np.uint8).view(np.float32))
    call("dropout_mask", storage, n, key["p"], key["seed"], key["step"], key["layer"], offset)
    got = host(storage).view(np.uint8)
    exact(got[:n], ref.mask((n,), **key, offset=offset), "GPU mask vs reference mask")
    assert (got[n:] == 0xAB).all(), "the mask kernel wrote past its n bytes"
    x = rng.standard_normal(n).astype(np.float32)
    args = (key["p"], key["seed"], key["step"], key["layer"], True, True)
    ty = poisoned((n,))
    call("dropout_forward", dev(x), ty, *args, offset=offset)
    exact(host(ty), ops.dropout_forward(x, **key, inverted=True, offset=offset), "y vs CPU")
    tdx = poisoned((n,))
    call("dropout_backward", dev(x), tdx, *args, beta=0.0, offset=offset)
    exact(host(tdx), ops.dropout_backward(x, **key, inverted=True, offset=offset), "dx vs CPU")
