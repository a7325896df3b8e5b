"""Convolution: naive loops over output positions on an explicitly zero-padded canvas."""

import math

import numpy as np


def output_size(size, kernel, stride, padding, rule):
    span = size + 2 * padding - kernel
    if rule == "floor":
        return span // stride + 1
    return 1 + math.ceil(span / stride)  # cuda-convnet: the last window may overhang


def _canvas(x, kh, kw, stride, padding, oh, ow):
    """x zero-padded, large enough for every window including an overhanging last one."""
    n, c, h, w = x.shape
    (sh, sw), (ph, pw) = stride, padding
    height = max(h + 2 * ph, (oh - 1) * sh + kh)
    width = max(w + 2 * pw, (ow - 1) * sw + kw)
    canvas = np.zeros((n, c, height, width))
    canvas[:, :, ph:ph + h, pw:pw + w] = x
    return canvas


def forward(x, w, b, stride, padding, groups, oh, ow):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, c, h, wid = x.shape
    f, cg, kh, kw = w.shape
    fg = f // groups
    canvas = _canvas(x, kh, kw, stride, padding, oh, ow)
    y = np.zeros((n, f, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * stride[0], ox * stride[1]
            for g in range(groups):
                patch = canvas[:, g * cg:(g + 1) * cg, y0:y0 + kh, x0:x0 + kw]  # (n, cg, kh, kw)
                wg = w[g * fg:(g + 1) * fg]                                     # (fg, cg, kh, kw)
                y[:, g * fg:(g + 1) * fg, oy, ox] = np.tensordot(patch, wg, axes=([1, 2, 3],
                                                                                  [1, 2, 3]))
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def backward(x, w, dy, stride, padding, groups):
    x, w, dy = (np.asarray(a, np.float64) for a in (x, w, dy))
    n, c, h, wid = x.shape
    f, cg, kh, kw = w.shape
    _, _, oh, ow = dy.shape
    fg = f // groups
    canvas = _canvas(x, kh, kw, stride, padding, oh, ow)
    dcanvas = np.zeros_like(canvas)
    dw = np.zeros_like(w)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * stride[0], ox * stride[1]
            for g in range(groups):
                sl = (slice(None), slice(g * cg, (g + 1) * cg), slice(y0, y0 + kh),
                      slice(x0, x0 + kw))
                d = dy[:, g * fg:(g + 1) * fg, oy, ox]  # (n, fg)
                dcanvas[sl] += np.tensordot(d, w[g * fg:(g + 1) * fg], axes=([1], [0]))
                dw[g * fg:(g + 1) * fg] += np.tensordot(d, canvas[sl], axes=([0], [0]))
    ph, pw = padding
    dx = dcanvas[:, :, ph:ph + h, pw:pw + wid]
    db = dy.sum(axis=(0, 2, 3))
    return dx, dw, db
