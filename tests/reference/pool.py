"""Max / average pooling with cuda-convnet's geometry (docs/ops-api.md): output o along an axis
covers input [start + o*stride, start + o*stride + size) clipped to [0, limit).

Forward: max, or the mean over the in-bounds pixels only. Backward, by hand: max sends each
window's dy to every in-bounds input equal to the window's max (ties all receive it); avg sends
dy / (in-bounds count) to every in-bounds input of the window. Overlapping windows add up.
"""

import math

import numpy as np


def output_size(size, window, stride, start=0, outputs=0):
    if outputs > 0:
        return outputs
    return max(1, math.ceil((size - start - window) / stride) + 1)


def window(o, size, stride, start, limit):
    """[first, last) input rows (or columns) of output o, clipped to the image."""
    first = start + o * stride
    return max(first, 0), min(first + size, limit)


def has_empty_window(length, count, size, stride, start):
    """Whether any of `count` outputs along an axis of `length` has no in-bounds pixel."""
    return any(lo >= hi for lo, hi in (window(o, size, stride, start, length)
                                       for o in range(count)))


def forward(x, mode, size, stride, start, oh, ow):
    """size, stride, start: (h, w) pairs."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    y = np.empty((n, c, oh, ow))
    for oy in range(oh):
        y0, y1 = window(oy, size[0], stride[0], start[0], h)
        for ox in range(ow):
            x0, x1 = window(ox, size[1], stride[1], start[1], w)
            patch = x[:, :, y0:y1, x0:x1]
            assert patch.size, "a window with no in-bounds pixel"
            y[:, :, oy, ox] = patch.max(axis=(2, 3)) if mode == "max" else patch.mean(axis=(2, 3))
    return y


def backward(x, dy, mode, size, stride, start):
    x, dy = np.asarray(x, np.float64), np.asarray(dy, np.float64)
    n, c, h, w = x.shape
    oh, ow = dy.shape[2:]
    dx = np.zeros_like(x)
    for oy in range(oh):
        y0, y1 = window(oy, size[0], stride[0], start[0], h)
        for ox in range(ow):
            x0, x1 = window(ox, size[1], stride[1], start[1], w)
            patch = x[:, :, y0:y1, x0:x1]
            g = dy[:, :, oy, ox][:, :, None, None]
            if mode == "max":
                hit = patch == patch.max(axis=(2, 3), keepdims=True)
                dx[:, :, y0:y1, x0:x1] += hit * g
            else:
                dx[:, :, y0:y1, x0:x1] += g / ((y1 - y0) * (x1 - x0))
    return dx


def near_tie(x, index, eps, size, stride, start, oh, ow):
    """Whether moving the flat element `index` of x by up to eps can change the maximum-holder of
    a window containing it: the max-pool kinks a gradient check must skip."""
    n, c, h, w = x.shape
    i, ch, r, col = np.unravel_index(index, x.shape)
    v = x[i, ch, r, col]
    for oy in range(oh):
        y0, y1 = window(oy, size[0], stride[0], start[0], h)
        if not y0 <= r < y1:
            continue
        for ox in range(ow):
            x0, x1 = window(ox, size[1], stride[1], start[1], w)
            if not x0 <= col < x1:
                continue
            others = x[i, ch, y0:y1, x0:x1].copy()
            others[r - y0, col - x0] = -np.inf
            if others.size > 1 and abs(v - others.max()) <= eps:
                return True
    return False
