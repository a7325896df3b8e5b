"""Convolution and the locally connected layer (a convolution with a filter bank per output
position): forward and backward over numpy arrays, and the output-size rules."""

from typing import Tuple

import numpy as np

from .. import _core
from ._checks import (IntOrPair, float_array, integer, optional_bias, optional_tensor, pair,
                      same_shape, tensor)

__all__ = ["conv_output_size", "conv_forward", "conv_backward", "local_forward", "local_backward"]

_CONV_RULES = ("floor", "cuda-convnet")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0,
                     rule: str = "floor") -> int:
    """Output positions along one axis.

    rule="floor": (size + 2*padding - kernel) // stride + 1.
    rule="cuda-convnet": 1 + ceil((size + 2*padding - kernel) / stride); the last positions may
    overhang the far side, where pixels read as zero (224, 11, 4 -> 55; floor gives 54).
    """
    op = "conv_output_size"
    if rule not in _CONV_RULES:
        raise ValueError(f"{op}: rule must be one of {_CONV_RULES}, got {rule!r}")
    if integer(op, "size", size, 1) + 2 * integer(op, "padding", padding, 0) < integer(
            op, "kernel", kernel, 1):
        raise ValueError(f"{op}: kernel {kernel} does not fit an input of {size} with padding "
                         f"{padding}")
    return _core.conv_output_size(integer(op, "size", size, 1), integer(op, "kernel", kernel, 1),
                                  integer(op, "stride", stride, 1),
                                  integer(op, "padding", padding, 0), rule)


def _conv_geometry(op, x, wshape, stride, padding, groups, rule):
    """Checks the geometry of filters of shape (F, C/groups, KH, KW) on x; returns the core's
    geometry arguments and the output shape."""
    sh, sw = pair(op, "stride", stride, 1)
    ph, pw = pair(op, "padding", padding, 0)
    groups = integer(op, "groups", groups, 1)
    if rule not in _CONV_RULES:
        raise ValueError(f"{op}: rule must be one of {_CONV_RULES}, got {rule!r}")
    n, c, h, wid = x.shape
    f, cg, kh, kw = wshape
    if c % groups or f % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels ({c}) and the "
                         f"filters ({f})")
    if cg != c // groups:
        raise ValueError(f"{op}: w must have shape (filters, C/groups={c // groups}, kh, kw), "
                         f"got {tuple(wshape)}")
    for axis, size, k, s, p in (("height", h, kh, sh, ph), ("width", wid, kw, sw, pw)):
        if size + 2 * p < k:
            raise ValueError(f"{op}: the {k}-wide kernel does not fit the input {axis} {size} "
                             f"with padding {p}")
    oh = _core.conv_output_size(h, kh, sh, ph, rule)
    ow = _core.conv_output_size(wid, kw, sw, pw, rule)
    return (sh, sw, ph, pw, groups), (n, f, oh, ow)


def _forward(core_op, x, w, b, yshape, geometry) -> np.ndarray:
    y = np.empty(yshape, dtype=x.dtype)
    core_op(tensor(x), tensor(w), optional_tensor(b), tensor(y), *geometry)
    return y


def _backward(core_op, x, w, dy, dbshape, geometry):
    dx, dw = np.empty_like(x), np.empty_like(w)
    db = np.empty(dbshape, dtype=x.dtype)
    core_op(tensor(x), tensor(w), tensor(dy), tensor(dx), tensor(dw), tensor(db), *geometry)
    return dx, dw, db


# ---- convolution ---------------------------------------------------------------------------------

def _conv_args(op, x, w, stride, padding, groups, rule):
    x = float_array(op, "x", x, ndim=4)
    w = float_array(op, "w", w, ndim=4, dtype=x.dtype)
    geometry, yshape = _conv_geometry(op, x, w.shape, stride, padding, groups, rule)
    return x, w, geometry, yshape


def conv_forward(x, w, b=None, *, stride: IntOrPair = 1, padding: IntOrPair = 0, groups: int = 1,
                 rule: str = "floor") -> np.ndarray:
    """2D convolution (cross-correlation). x (N, C, H, W), w (F, C/groups, KH, KW), b (F,) or
    None -> y (N, F, OH, OW). stride, padding: int or (h, w). Group g maps input channels
    [g*C/G, (g+1)*C/G) to output channels [g*F/G, (g+1)*F/G). rule: see conv_output_size."""
    op = "conv_forward"
    x, w, geometry, yshape = _conv_args(op, x, w, stride, padding, groups, rule)
    b = optional_bias(op, b, w.shape[0], x.dtype)
    return _forward(_core.conv_forward, x, w, b, yshape, geometry)


def conv_backward(x, w, dy, *, stride: IntOrPair = 1, padding: IntOrPair = 0, groups: int = 1,
                  rule: str = "floor") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of sum(conv_forward(x, w, b) * dy): returns (dx, dw, db) shaped like x, w and
    (F,). Same geometry arguments as conv_forward."""
    op = "conv_backward"
    x, w, geometry, yshape = _conv_args(op, x, w, stride, padding, groups, rule)
    dy = float_array(op, "dy", dy, ndim=4, dtype=x.dtype)
    same_shape(op, "dy", dy, yshape, "the output")
    return _backward(_core.conv_backward, x, w, dy, w.shape[0], geometry)


# ---- locally connected ---------------------------------------------------------------------------

def _local_args(op, x, w, stride, padding, groups, rule):
    x = float_array(op, "x", x, ndim=4)
    w = float_array(op, "w", w, ndim=6, dtype=x.dtype)
    geometry, yshape = _conv_geometry(op, x, w.shape[2:], stride, padding, groups, rule)
    if w.shape[:2] != yshape[2:]:
        raise ValueError(f"{op}: w must hold one filter bank per output position: shape "
                         f"{yshape[2:] + w.shape[2:]}, got {w.shape}")
    return x, w, geometry, yshape


def local_forward(x, w, b=None, *, stride: IntOrPair = 1, padding: IntOrPair = 0,
                  groups: int = 1, rule: str = "floor") -> np.ndarray:
    """Locally connected layer (cuda-convnet's local): a convolution with different filters at
    every output position. x (N, C, H, W); w (OH, OW, F, C/groups, KH, KW); b (F, OH, OW) or
    None; y (N, F, OH, OW). Geometry arguments as conv_forward."""
    op = "local_forward"
    x, w, geometry, yshape = _local_args(op, x, w, stride, padding, groups, rule)
    if b is not None:
        b = float_array(op, "b", b, ndim=3, dtype=x.dtype)
        same_shape(op, "b", b, (yshape[1],) + yshape[2:], "(filters, OH, OW)")
    return _forward(_core.local_forward, x, w, b, yshape, geometry)


def local_backward(x, w, dy, *, stride: IntOrPair = 1, padding: IntOrPair = 0, groups: int = 1,
                   rule: str = "floor") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of sum(local_forward(x, w, b) * dy): (dx, dw, db) shaped like x, w and
    (F, OH, OW)."""
    op = "local_backward"
    x, w, geometry, yshape = _local_args(op, x, w, stride, padding, groups, rule)
    dy = float_array(op, "dy", dy, ndim=4, dtype=x.dtype)
    same_shape(op, "dy", dy, yshape, "the output")
    return _backward(_core.local_backward, x, w, dy, (yshape[1],) + yshape[2:], geometry)
