"""Philox4x32-R (Salmon et al., "Parallel Random Numbers: As Easy as 1, 2, 3", SC 2011) in numpy,
vectorised over counters, and the dropout mask and maps built on it exactly as docs/ops-api.md
states them. Written from the paper's round function; tests/ops/test_dropout.py checks it against
Random123's published known-answer vectors before anything is checked against it.

One round on counter (c0, c1, c2, c3) and key (k0, k1), all 32-bit words:
  hi0:lo0 = M0 * c0,  hi1:lo1 = M1 * c2                      (32 x 32 -> 64-bit products)
  (c0, c1, c2, c3) <- (hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0)
and the key is bumped by the Weyl constants (W0, W1) between rounds (before rounds 2..R).
"""

import math

import numpy as np

M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
_WORD = 0xFFFFFFFF


def philox4x32(counters, key, rounds=10):
    """counters: integer array (..., 4) of 32-bit words; key: (k0, k1). Returns the (..., 4)
    output words as uint64 (each < 2**32)."""
    c = np.asarray(counters, dtype=np.uint64)
    assert c.shape[-1] == 4 and (c <= _WORD).all()
    c0, c1, c2, c3 = (c[..., i] for i in range(4))
    k0, k1 = (int(k) & _WORD for k in key)
    lo_mask, shift = np.uint64(_WORD), np.uint64(32)
    for r in range(rounds):
        if r:
            k0, k1 = (k0 + W0) & _WORD, (k1 + W1) & _WORD
        # Both factors are below 2**32, so the products fit uint64 exactly.
        p0, p1 = np.uint64(M0) * c0, np.uint64(M1) * c2
        c0, c1, c2, c3 = ((p1 >> shift) ^ c1 ^ np.uint64(k0), p1 & lo_mask,
                          (p0 >> shift) ^ c3 ^ np.uint64(k1), p0 & lo_mask)
    return np.stack([c0, c1, c2, c3], axis=-1)


def philox4x32_10(counter, key):
    """One block, as Python ints (the form Random123's known answers are written in)."""
    return tuple(int(v) for v in philox4x32(np.array(counter), key, rounds=10))


def threshold(p):
    """floor((1 - p) * 2**32): element i is kept iff its word is below this."""
    return math.floor((1.0 - p) * 2.0**32)


def words(n, seed, step, layer=0, offset=0):
    """The Philox word behind each of n flat elements at stream positions offset .. offset+n-1:
    position j uses word j % 4 of counter (j // 4, step lo, step hi, layer) under key (seed lo,
    seed hi)."""
    first, last = offset // 4, (offset + n + 3) // 4
    counters = np.zeros((last - first, 4), dtype=np.uint64)
    counters[:, 0] = np.arange(first, last, dtype=np.uint64)
    counters[:, 1] = step & _WORD
    counters[:, 2] = step >> 32
    counters[:, 3] = layer
    out = philox4x32(counters, (seed & _WORD, seed >> 32)).reshape(-1)
    return out[offset - 4 * first:][:n]


def mask(shape, p, seed, step, layer=0, offset=0):
    """uint8 keep mask (1 = kept) of the given shape, its element 0 at stream position offset."""
    shape = tuple(shape)
    n = int(np.prod(shape, dtype=np.int64))
    return (words(n, seed, step, layer, offset) < threshold(p)).astype(np.uint8).reshape(shape)


def _scale(p, train, inverted):
    keep = 1.0 - p
    if train:
        return 1.0 / keep if inverted else 1.0
    return 1.0 if inverted else keep


def forward(x, p, seed, step, layer, train, inverted, offset=0):
    """classic train: x*mask; classic test: x*(1-p); inverted train: x*mask/(1-p); inverted
    test: x."""
    x = np.asarray(x, np.float64)
    m = mask(x.shape, p, seed, step, layer, offset) if train else 1.0
    return x * m * _scale(p, train, inverted)


def backward(dy, p, seed, step, layer, train, inverted, offset=0):
    """y is linear in x with a diagonal Jacobian (mask times a constant), so dx = that diagonal
    times dy, with the mask regenerated from (seed, step, layer, offset)."""
    dy = np.asarray(dy, np.float64)
    m = mask(dy.shape, p, seed, step, layer, offset) if train else 1.0
    return dy * m * _scale(p, train, inverted)
