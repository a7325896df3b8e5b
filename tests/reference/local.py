"""Locally connected layer: conv's reference with a different filter bank at each position."""

import numpy as np

from .conv import _canvas


def forward(x, w, b, stride, padding, groups):
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    oh, ow, f, cg, kh, kw = w.shape
    fg = f // groups
    canvas = _canvas(x, kh, kw, stride, padding, oh, ow)
    y = np.zeros((x.shape[0], f, oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * stride[0], ox * stride[1]
            for g in range(groups):
                patch = canvas[:, g * cg:(g + 1) * cg, y0:y0 + kh, x0:x0 + kw]
                bank = w[oy, ox, g * fg:(g + 1) * fg]
                y[:, g * fg:(g + 1) * fg, oy, ox] = np.tensordot(patch, bank,
                                                                 axes=([1, 2, 3], [1, 2, 3]))
    return y if b is None else y + np.asarray(b, np.float64)[None]


def backward(x, w, dy, stride, padding, groups):
    x, w, dy = (np.asarray(a, np.float64) for a in (x, w, dy))
    oh, ow, f, cg, kh, kw = w.shape
    fg = f // groups
    canvas = _canvas(x, kh, kw, stride, padding, oh, ow)
    dcanvas, dw = np.zeros_like(canvas), np.zeros_like(w)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * stride[0], ox * stride[1]
            for g in range(groups):
                sl = (slice(None), slice(g * cg, (g + 1) * cg), slice(y0, y0 + kh),
                      slice(x0, x0 + kw))
                d = dy[:, g * fg:(g + 1) * fg, oy, ox]
                dcanvas[sl] += np.tensordot(d, w[oy, ox, g * fg:(g + 1) * fg], axes=([1], [0]))
                dw[oy, ox, g * fg:(g + 1) * fg] = np.tensordot(d, canvas[sl], axes=([0], [0]))
    h, wid = x.shape[2:]
    dx = dcanvas[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + wid]
    return dx, dw, dy.sum(axis=0)
