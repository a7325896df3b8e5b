"""Max / average pooling with cuda-convnet's geometry: window o covers
[start + o*stride, start + o*stride + size) clipped to the image."""

import math

import numpy as np


def output_size(size, window, stride, start=0, outputs=0):
    if outputs > 0:
        return outputs
    return max(1, math.ceil((size - start - window) / stride) + 1)


def _window(o, size, stride, start, limit):
    first = start + o * stride
    return max(first, 0), min(first + size, limit)


def forward(x, mode, size, stride, start, oh, ow):
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    y = np.empty((n, c, oh, ow))
    for oy in range(oh):
        y0, y1 = _window(oy, size[0], stride[0], start[0], h)
        for ox in range(ow):
            x0, x1 = _window(ox, size[1], stride[1], start[1], w)
            patch = x[:, :, y0:y1, x0:x1]
            y[:, :, oy, ox] = patch.max(axis=(2, 3)) if mode == "max" else patch.mean(axis=(2, 3))
    return y


def backward(x, dy, mode, size, stride, start):
    """Max: dy goes to every input equal to the window's max (cuda-convnet's ties rule)."""
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    n, c, h, w = x.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros_like(x)
    for oy in range(oh):
        y0, y1 = _window(oy, size[0], stride[0], start[0], h)
        for ox in range(ow):
            x0, x1 = _window(ox, size[1], stride[1], start[1], w)
            patch = x[:, :, y0:y1, x0:x1]
            g = dy[:, :, oy, ox][:, :, None, None]
            if mode == "max":
                hit = patch == patch.max(axis=(2, 3), keepdims=True)
                dx[:, :, y0:y1, x0:x1] += hit * g
            else:
                dx[:, :, y0:y1, x0:x1] += g / patch[0, 0].size
    return dx
