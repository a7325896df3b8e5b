"""The fully connected layer: y = x @ w.T + b and its gradients over numpy arrays."""

from typing import Tuple

import numpy as np

from .. import _core
from ._checks import float_array, optional_bias, optional_tensor, same_shape, tensor

__all__ = ["fc_forward", "fc_backward"]


def _fc_args(op, x, w):
    x = float_array(op, "x", x, min_ndim=2)
    w = float_array(op, "w", w, ndim=2, dtype=x.dtype)
    k = int(np.prod(x.shape[1:]))
    if w.shape[1] != k:
        raise ValueError(f"{op}: w must have shape (outputs, {k}) for x of shape {x.shape}, "
                         f"got {w.shape}")
    return x, w


def fc_forward(x, w, b=None) -> np.ndarray:
    """y = x @ w.T + b. x (N, K) or (N, ...) read as (N, K) in C order; w (M, K); b (M,) or
    None; y (N, M)."""
    op = "fc_forward"
    x, w = _fc_args(op, x, w)
    b = optional_bias(op, b, w.shape[0], x.dtype)
    y = np.empty((x.shape[0], w.shape[0]), dtype=x.dtype)
    _core.fc_forward(tensor(x), tensor(w), optional_tensor(b), tensor(y))
    return y


def fc_backward(x, w, dy) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of sum(fc_forward(x, w, b) * dy): (dx shaped like x, dw (M, K), db (M,))."""
    op = "fc_backward"
    x, w = _fc_args(op, x, w)
    dy = float_array(op, "dy", dy, ndim=2, dtype=x.dtype)
    same_shape(op, "dy", dy, (x.shape[0], w.shape[0]), "the output")
    dx, dw = np.empty_like(x), np.empty_like(w)
    db = np.empty(w.shape[0], dtype=x.dtype)
    _core.fc_backward(tensor(x), tensor(w), tensor(dy), tensor(dx), tensor(dw), tensor(db))
    return dx, dw, db
