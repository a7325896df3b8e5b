"""Dropout over numpy arrays with a counter-based mask (Philox keyed by seed, step and layer):
the mask is regenerated, never stored, so forward and backward need only the same key. offset:
the stream position of element 0, so that a shard of a larger batch (data parallelism) draws its
part of the larger batch's mask."""

import numpy as np

from .. import _core
from ._checks import float_array, integer, number, tensor

__all__ = ["dropout_mask", "dropout_forward", "dropout_backward"]


def _dropout_args(op, p, seed, step, layer, offset=0):
    p = number(op, "p", p, minimum=0.0, maximum=1.0, exclusive_max=True)
    seed = integer(op, "seed", seed, 0)
    step = integer(op, "step", step, 0)
    layer = integer(op, "layer", layer, 0)
    offset = integer(op, "offset", offset, 0)
    if seed >= 2**64 or step >= 2**64 or layer >= 2**32:
        raise ValueError(f"{op}: seed and step must fit 64 bits and layer 32 bits")
    return p, seed, step, layer, offset


def _dropout_apply(op, core_op, name, a, p, seed, step, layer, train, inverted, offset):
    """Forward and backward are the same map (mask times a factor) on x or on dy."""
    a = float_array(op, name, a)
    p, seed, step, layer, offset = _dropout_args(op, p, seed, step, layer, offset)
    out = np.empty_like(a)
    core_op(tensor(a), tensor(out), p, seed, step, layer, bool(train), bool(inverted),
            offset=offset)
    return out


def dropout_mask(shape, *, p: float, seed: int, step: int, layer: int = 0,
                 offset: int = 0) -> np.ndarray:
    """The keep mask (uint8, 1 = kept) that dropout uses for this (seed, step, layer): element i
    is kept when Philox4x32-10 word j%4 of counter (j//4, step lo, step hi, layer) and key
    (seed lo, seed hi) is below floor((1 - p) * 2^32), j = offset + i."""
    op = "dropout_mask"
    p, seed, step, layer, offset = _dropout_args(op, p, seed, step, layer, offset)
    try:
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    except (TypeError, ValueError):
        raise ValueError(f"{op}: shape must be a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: shape must not be negative, got {shape}")
    n = int(np.prod(shape, dtype=np.int64))
    # Tensors hold floats: the core writes the n mask bytes into whole float32 words.
    storage = np.empty(-(-n // 4) * 4, dtype=np.uint8)
    _core.dropout_mask(tensor(storage.view(np.float32)), n, p, seed, step, layer, offset)
    return storage[:n].reshape(shape)


def dropout_forward(x, *, p: float = 0.5, seed: int = 0, step: int = 0, layer: int = 0,
                    train: bool = True, inverted: bool = False, offset: int = 0) -> np.ndarray:
    """Dropout of probability p. Classic (the paper, cuda-convnet's dropout2): train y = x*mask,
    test y = x*(1-p). inverted=True (cuda-convnet2's dropout): train y = x*mask/(1-p), test y = x.
    The mask is dropout_mask(x.shape, p=p, seed=seed, step=step, layer=layer, offset=offset)."""
    return _dropout_apply("dropout_forward", _core.dropout_forward, "x", x, p, seed, step, layer,
                          train, inverted, offset)


def dropout_backward(dy, *, p: float = 0.5, seed: int = 0, step: int = 0, layer: int = 0,
                     train: bool = True, inverted: bool = False, offset: int = 0) -> np.ndarray:
    """dx for dropout_forward with the same arguments (the mask is regenerated, not stored)."""
    return _dropout_apply("dropout_backward", _core.dropout_backward, "dy", dy, p, seed, step,
                          layer, train, inverted, offset)
