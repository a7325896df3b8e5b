"""Max and average pooling with cuda-convnet's geometry (start, outputs) over numpy arrays."""

import numpy as np

from .. import _core
from ._checks import IntOrPair, float_array, integer, pair, same_shape, tensor

__all__ = ["pool_output_size", "pool_forward", "pool_backward"]

_POOL_MODES = ("max", "avg")


def pool_output_size(size: int, window: int, stride: int, start: int = 0, outputs: int = 0) -> int:
    """cuda-convnet's rule: outputs if > 0, else ceil((size - start - window) / stride) + 1
    (55 -> 27, 27 -> 13, 13 -> 6 for window 3, stride 2)."""
    op = "pool_output_size"
    return _core.pool_output_size(integer(op, "size", size, 1), integer(op, "window", window, 1),
                                  integer(op, "stride", stride, 1), integer(op, "start", start),
                                  integer(op, "outputs", outputs, 0))


def _pool_args(op, x, mode, size, stride, start, outputs):
    x = float_array(op, "x", x, ndim=4)
    if mode not in _POOL_MODES:
        raise ValueError(f"{op}: mode must be one of {_POOL_MODES}, got {mode!r}")
    sh, sw = pair(op, "size", size, 1)
    th, tw = pair(op, "stride", stride, 1)
    ah, aw = pair(op, "start", start)
    outh, outw = pair(op, "outputs", outputs, 0)
    oh = _core.pool_output_size(x.shape[2], sh, th, ah, outh)
    ow = _core.pool_output_size(x.shape[3], sw, tw, aw, outw)
    for axis, n, window, s, a, o in (("height", x.shape[2], sh, th, ah, oh),
                                     ("width", x.shape[3], sw, tw, aw, ow)):
        if a + window <= 0 or a + (o - 1) * s >= n:
            raise ValueError(f"{op}: along the {axis}, a window (size {window}, stride {s}, start "
                             f"{a}, {o} outputs) lies entirely outside the input of {n}")
    return x, (mode, sh, sw, th, tw, ah, aw), (x.shape[0], x.shape[1], oh, ow)


def pool_forward(x, *, mode: str, size: IntOrPair, stride: IntOrPair, start: IntOrPair = 0,
                 outputs: IntOrPair = 0) -> np.ndarray:
    """Max ("max") or average ("avg") pooling with cuda-convnet's geometry. x (N, C, H, W) ->
    y (N, C, OH, OW). Output o covers input [start + o*stride, start + o*stride + size) clipped
    to the image; avg divides by the in-image count. size/stride/start/outputs: int or (h, w)."""
    op = "pool_forward"
    x, params, yshape = _pool_args(op, x, mode, size, stride, start, outputs)
    y = np.empty(yshape, dtype=x.dtype)
    _core.pool_forward(tensor(x), tensor(y), *params)
    return y


def pool_backward(x, y, dy, *, mode: str, size: IntOrPair, stride: IntOrPair,
                  start: IntOrPair = 0, outputs: IntOrPair = 0) -> np.ndarray:
    """dx for y = pool_forward(x, ...) given dy; max sends dy to every input equal to the max."""
    op = "pool_backward"
    x, params, yshape = _pool_args(op, x, mode, size, stride, start, outputs)
    y = float_array(op, "y", y, dtype=x.dtype)
    dy = float_array(op, "dy", dy, dtype=x.dtype)
    same_shape(op, "y", y, yshape, "the output")
    same_shape(op, "dy", dy, yshape, "the output")
    dx = np.empty_like(x)
    _core.pool_backward(tensor(x), tensor(y), tensor(dy), tensor(dx), *params)
    return dx
