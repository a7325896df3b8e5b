"""Cross-map response normalisation (docs/ops-api.md): the paper's formula and cuda-convnet's
cmrnorm (centred or blocked windows), by explicit loops over maps and windows, with the backward
pass derived by hand (W(i) the window of map i):
  y_i = x_i d_i^-b,  d_i = k + a sum_{j in W(i)} x_j^2
  dL/dx_j = dy_j d_j^-b - 2 a b x_j sum_{i : j in W(i)} dy_i x_i d_i^(-b-1)
"""

import numpy as np


def paper_window(i, channels, n):
    return range(max(0, i - n // 2), min(channels - 1, i + n // 2) + 1)


def cmrnorm_window(f, channels, size, blocked):
    lo = (f // size) * size if blocked else f - size // 2
    return range(max(lo, 0), min(lo + size, channels))


def _windows(channels, kind, size, blocked=False):
    if kind == "paper":
        return [paper_window(i, channels, size) for i in range(channels)]
    return [cmrnorm_window(f, channels, size, blocked) for f in range(channels)]


def _denominators(x, windows, alpha, k):
    d = np.empty_like(x)
    for i, win in enumerate(windows):
        d[:, i] = k + alpha * sum(x[:, j] ** 2 for j in win)
    return d


def forward(x, windows, alpha, beta, k):
    x = np.asarray(x, np.float64)
    return x * _denominators(x, windows, alpha, k) ** -beta


def backward(x, dy, windows, alpha, beta, k):
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    d = _denominators(x, windows, alpha, k)
    dx = dy * d ** -beta
    for i, win in enumerate(windows):
        t = dy[:, i] * x[:, i] * d[:, i] ** (-beta - 1)
        for j in win:
            dx[:, j] -= 2 * alpha * beta * x[:, j] * t
    return dx


def paper_forward(x, size=5, alpha=1e-4, beta=0.75, k=2.0):
    return forward(x, _windows(x.shape[1], "paper", size), alpha, beta, k)


def paper_backward(x, dy, size=5, alpha=1e-4, beta=0.75, k=2.0):
    return backward(x, dy, _windows(x.shape[1], "paper", size), alpha, beta, k)


def cmrnorm_forward(x, size, scale, pow, min_div=1.0, blocked=False):
    return forward(x, _windows(x.shape[1], "cmr", size, blocked), scale / size, pow, min_div)


def cmrnorm_backward(x, dy, size, scale, pow, min_div=1.0, blocked=False):
    return backward(x, dy, _windows(x.shape[1], "cmr", size, blocked), scale / size, pow, min_div)
