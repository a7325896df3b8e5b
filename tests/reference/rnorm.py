"""cuda-convnet's rnorm (normalisation within each map over size x size windows starting size//2
before the pixel, clipped), forward and hand-derived backward:
  y_p = x_p d_p^-b,  d_p = k + a sum_{q in W(p)} x_q^2,  a = scale / size^2
  dL/dx_q = dy_q d_q^-b - 2 a b x_q sum_{p : q in W(p)} dy_p x_p d_p^(-b-1)
"""

import numpy as np


def _windows(h, w, size):
    pre = size // 2
    for i in range(h):
        for j in range(w):
            yield i, j, (slice(max(i - pre, 0), min(i - pre + size, h)),
                         slice(max(j - pre, 0), min(j - pre + size, w)))


def _denominators(x, size, alpha, k):
    d = np.empty_like(x)
    for i, j, (rows, cols) in _windows(x.shape[2], x.shape[3], size):
        d[:, :, i, j] = k + alpha * (x[:, :, rows, cols] ** 2).sum(axis=(2, 3))
    return d


def forward(x, size, scale, pow, min_div):
    x = np.asarray(x, np.float64)
    return x * _denominators(x, size, scale / size**2, min_div) ** -pow


def backward(x, dy, size, scale, pow, min_div):
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    alpha = scale / size**2
    d = _denominators(x, size, alpha, min_div)
    dx = dy * d ** -pow
    t = dy * x * d ** (-pow - 1)
    for i, j, (rows, cols) in _windows(x.shape[2], x.shape[3], size):
        dx[:, :, rows, cols] -= 2 * alpha * pow * x[:, :, rows, cols] * t[:, :, i, j][:, :, None,
                                                                                      None]
    return dx


def _local_mean(x, size):
    m = np.empty_like(x)
    for i, j, (rows, cols) in _windows(x.shape[2], x.shape[3], size):
        m[:, :, i, j] = x[:, :, rows, cols].mean(axis=(2, 3))
    return m


def cnorm_forward(x, size, scale, pow, min_div):
    """Contrast normalisation: the window sums squared deviations from the local mean."""
    x = np.asarray(x, np.float64)
    dev = x - _local_mean(x, size)
    return x * _denominators(dev, size, scale / size**2, min_div) ** -pow
