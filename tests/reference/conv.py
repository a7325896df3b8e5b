"""Grouped 2D convolution (cross-correlation) from docs/ops-api.md, by explicit loops over output
positions and groups on an explicitly zero-padded canvas:

  y[n, f, oy, ox] = b[f] + sum_{c, ky, kx} w[f, c, ky, kx] * xpad[n, g*C/G + c, oy*sh + ky,
                                                                  ox*sw + kx]

with g = f // (F/G) and xpad x surrounded by zeros (padding on the near sides, padding plus any
overhang of the cuda-convnet rule's last window on the far sides). Backward, by hand: each output
position adds dy[n, f, oy, ox] * w[f] into the patch of dxpad it read, and dy[n, f, oy, ox] times
that patch into dw[f]; dx is the interior of dxpad; db[f] = sum over n, oy, ox of dy.
"""

import math

import numpy as np


def output_size(size, kernel, stride, padding, rule):
    span = size + 2 * padding - kernel
    if rule == "floor":
        return span // stride + 1
    assert rule == "cuda-convnet", rule
    return 1 + math.ceil(span / stride)  # the last window may hang over the far side


def _canvas(x, kh, kw, stride, padding, oh, ow):
    """x zero-padded, large enough for every window including an overhanging last one."""
    n, c, h, w = x.shape
    (sh, sw), (ph, pw) = stride, padding
    height = max(h + 2 * ph, (oh - 1) * sh + kh)
    width = max(w + 2 * pw, (ow - 1) * sw + kw)
    canvas = np.zeros((n, c, height, width))
    canvas[:, :, ph:ph + h, pw:pw + w] = x
    return canvas


def _groups(w, groups):
    """(output-channel slice, input-channel slice) of each group."""
    f, cg = w.shape[:2]
    fg = f // groups
    return [(slice(g * fg, (g + 1) * fg), slice(g * cg, (g + 1) * cg)) for g in range(groups)]


def forward(x, w, b, stride, padding, groups, oh, ow):
    """stride, padding: (h, w) pairs; oh, ow: the output size (from output_size's rule)."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    kh, kw = w.shape[2:]
    canvas = _canvas(x, kh, kw, stride, padding, oh, ow)
    y = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * stride[0], ox * stride[1]
            for fs, cs in _groups(w, groups):
                patch = canvas[:, cs, y0:y0 + kh, x0:x0 + kw]              # (n, cg, kh, kw)
                y[:, fs, oy, ox] = np.einsum("nckl,fckl->nf", patch, w[fs])
    if b is not None:
        y += np.asarray(b, np.float64)[None, :, None, None]
    return y


def backward(x, w, dy, stride, padding, groups):
    """(dx, dw, db): gradients of sum(forward(x, w, b) * dy)."""
    x, w, dy = (np.asarray(a, np.float64) for a in (x, w, dy))
    h, wid = x.shape[2:]
    kh, kw = w.shape[2:]
    oh, ow = dy.shape[2:]
    canvas = _canvas(x, kh, kw, stride, padding, oh, ow)
    dcanvas = np.zeros_like(canvas)
    dw = np.zeros_like(w)
    for oy in range(oh):
        for ox in range(ow):
            y0, x0 = oy * stride[0], ox * stride[1]
            for fs, cs in _groups(w, groups):
                window = (slice(None), cs, slice(y0, y0 + kh), slice(x0, x0 + kw))
                d = dy[:, fs, oy, ox]                                       # (n, fg)
                dcanvas[window] += np.einsum("nf,fckl->nckl", d, w[fs])
                dw[fs] += np.einsum("nf,nckl->fckl", d, canvas[window])
    ph, pw = padding
    dx = dcanvas[:, :, ph:ph + h, pw:pw + wid]  # padding and overhang gradients are dropped
    return dx, dw, dy.sum(axis=(0, 2, 3))


def forward_direct(x, w, b, stride, padding, groups, oh, ow):
    """The formula element by element, with out-of-image reads as zeros and no canvas: a second,
    independent form of forward, used only to check forward on tiny shapes."""
    x, w = np.asarray(x, np.float64), np.asarray(w, np.float64)
    n, c, h, wid = x.shape
    f, cg, kh, kw = w.shape
    fg = f // groups
    y = np.zeros((n, f, oh, ow))
    for i in range(n):
        for o in range(f):
            g = o // fg
            for oy in range(oh):
                for ox in range(ow):
                    s = 0.0 if b is None else float(b[o])
                    for ci in range(cg):
                        for ky in range(kh):
                            for kx in range(kw):
                                iy = oy * stride[0] - padding[0] + ky
                                ix = ox * stride[1] - padding[1] + kx
                                if 0 <= iy < h and 0 <= ix < wid:
                                    s += w[o, ci, ky, kx] * x[i, g * cg + ci, iy, ix]
                    y[i, o, oy, ox] = s
    return y
