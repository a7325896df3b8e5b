"""Fully connected: x (N, ...) read as (N, K) in C order, w (M, K), y = x w^T + b, (N, M).
Backward, by hand: dx[n, k] = sum_m dy[n, m] w[m, k] (reshaped to x's shape),
dw[m, k] = sum_n dy[n, m] x[n, k], db[m] = sum_n dy[n, m]."""

import numpy as np


def _flat(x):
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[0], -1)


def forward(x, w, b):
    y = np.einsum("nk,mk->nm", _flat(x), np.asarray(w, np.float64))
    return y if b is None else y + np.asarray(b, np.float64)[None, :]


def backward(x, w, dy):
    x2, w, dy = _flat(x), np.asarray(w, np.float64), np.asarray(dy, np.float64)
    dx = np.einsum("nm,mk->nk", dy, w).reshape(np.shape(x))
    return dx, np.einsum("nm,nk->mk", dy, x2), dy.sum(axis=0)
