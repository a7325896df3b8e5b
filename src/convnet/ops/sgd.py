"""The paper's SGD update with momentum and weight decay, in place on numpy arrays."""

import numpy as np

from .. import _core
from ._checks import float_array, like, number, tensor

__all__ = ["sgd_update"]


def sgd_update(w, grad, v, *, eps: float, mom: float, wc: float) -> None:
    """The paper's update, in place: v <- mom*v - wc*eps*w - eps*grad; w <- w + v.
    w and v must be writeable; w, grad, v share shape and dtype."""
    op = "sgd_update"
    w = float_array(op, "w", w)
    grad, v = like(op, "w", w, grad=grad, v=v)
    for name, a in (("w", w), ("v", v)):
        if not a.flags.writeable:
            raise ValueError(f"{op}: {name} is updated in place and must be writeable")
    if np.shares_memory(w, v):
        raise ValueError(f"{op}: w and v must not share memory")
    _core.sgd_update(tensor(w), tensor(grad), tensor(v), number(op, "eps", eps),
                     number(op, "mom", mom), number(op, "wc", wc))
