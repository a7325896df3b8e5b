"""Philox4x32-10 (Salmon et al., SC 2011) in plain Python integers, and the dropout mask and maps
built on it exactly as docs/ops-api.md states them."""

import numpy as np

_M0, _M1 = 0xD2511F53, 0xCD9E8D57
_W0, _W1 = 0x9E3779B9, 0xBB67AE85
_MASK = 0xFFFFFFFF


def philox4x32_10(counter, key):
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        p0, p1 = _M0 * c0, _M1 * c2
        c0, c1, c2, c3 = ((p1 >> 32) ^ c1 ^ k0, p1 & _MASK, (p0 >> 32) ^ c3 ^ k1, p0 & _MASK)
        k0, k1 = (k0 + _W0) & _MASK, (k1 + _W1) & _MASK
    return c0, c1, c2, c3


def mask(shape, p, seed, step, layer=0):
    n = int(np.prod(shape))
    threshold = int((1.0 - p) * 2**32)
    out = np.empty(n, dtype=np.uint8)
    key = (seed & _MASK, seed >> 32)
    for block in range((n + 3) // 4):
        words = philox4x32_10((block, step & _MASK, step >> 32, layer), key)
        for j in range(4):
            if 4 * block + j < n:
                out[4 * block + j] = words[j] < threshold
    return out.reshape(shape)


def forward(x, p, seed, step, layer, train, inverted):
    x = np.asarray(x, np.float64)
    keep = 1.0 - p
    if not train:
        return x.copy() if inverted else x * keep
    m = mask(x.shape, p, seed, step, layer)
    return x * m / keep if inverted else x * m
