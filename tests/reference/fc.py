"""Fully connected: y = x w^T + b on x flattened to (N, K)."""

import numpy as np


def forward(x, w, b):
    x2 = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    y = x2 @ np.asarray(w, np.float64).T
    return y if b is None else y + np.asarray(b, np.float64)


def backward(x, w, dy):
    x2 = np.asarray(x, np.float64).reshape(x.shape[0], -1)
    dy = np.asarray(dy, np.float64)
    dx = (dy @ np.asarray(w, np.float64)).reshape(x.shape)
    return dx, dy.T @ x2, dy.sum(axis=0)
