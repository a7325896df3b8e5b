"""Softmax and the multinomial log-loss over numpy arrays (N, K)."""

from typing import NamedTuple

import numpy as np

from .. import _core
from ._checks import float_array, integer, like, tensor

__all__ = ["SoftmaxLogLoss", "softmax_forward", "softmax_backward", "softmax_logloss"]


class SoftmaxLogLoss(NamedTuple):
    probs: np.ndarray   # (N, K) softmax of x
    loss: float         # sum over the batch of -log probs[n, label[n]]
    dx: np.ndarray      # probs - onehot(labels): the gradient of `loss` w.r.t. x
    top1_errors: int    # samples whose label is not the most probable class
    topk_errors: int    # samples whose label is not among the topk most probable


def softmax_forward(x) -> np.ndarray:
    """Row-wise softmax of x (N, K)."""
    op = "softmax_forward"
    x = float_array(op, "x", x, ndim=2)
    probs = np.empty_like(x)
    _core.softmax_forward(tensor(x), tensor(probs))
    return probs


def softmax_backward(y, dy) -> np.ndarray:
    """dx for y = softmax_forward(x) given dy: y * (dy - sum(dy * y, axis=1))."""
    op = "softmax_backward"
    y = float_array(op, "y", y, ndim=2)
    (dy,) = like(op, "y", y, dy=dy)
    dx = np.empty_like(y)
    _core.softmax_backward(tensor(y), tensor(dy), tensor(dx))
    return dx


def _labels(op, labels, n, k):
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[0] == 1:  # cuda-convnet stores labels as a (1, N) row
        labels = labels[0]
    if labels.shape != (n,):
        raise ValueError(f"{op}: labels must have shape ({n},), got {labels.shape}")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise ValueError(f"{op}: float labels must hold whole numbers")
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"{op}: labels must be integers (or floats holding integers), "
                         f"got {labels.dtype}")
    if n and (labels.min() < 0 or labels.max() >= k):
        bad = labels[(labels < 0) | (labels >= k)][0]
        raise ValueError(f"{op}: label {bad.item()!r} is outside [0, {k})")
    return np.ascontiguousarray(labels, dtype=np.int32)


def softmax_logloss(x, labels, *, topk: int = 5) -> SoftmaxLogLoss:
    """Softmax of logits x (N, K) with the multinomial log-loss against labels (N,) (integers, or
    floats holding integers as cuda-convnet stores them). See SoftmaxLogLoss for the fields; a
    sample counts as correct at k when fewer than k classes are strictly more probable."""
    op = "softmax_logloss"
    x = float_array(op, "x", x, ndim=2)
    topk = integer(op, "topk", topk, 1)
    labels = _labels(op, labels, x.shape[0], x.shape[1])
    probs, dx = np.empty_like(x), np.empty_like(x)
    loss, top1, topk_errors = _core.softmax_logloss(tensor(x), labels, tensor(probs), tensor(dx),
                                                    topk)
    return SoftmaxLogLoss(probs, float(loss), dx, int(top1), int(topk_errors))
