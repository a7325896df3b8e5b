"""The argument checks every op shares, and the zero-copy wrapping of checked numpy arrays into
the core's tensors. Each check raises ValueError naming the op and the argument."""

from typing import Optional, Sequence, Tuple, Union

import numpy as np

from .. import _core

IntOrPair = Union[int, Tuple[int, int]]

_FLOAT_TYPES = (np.float32, np.float64)


def float_array(op: str, name: str, a, ndim: Optional[int] = None, dtype=None,
                min_ndim: int = 0) -> np.ndarray:
    """Checks a float array argument; returns it. dtype: the dtype it must share, if known."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{op}: {name} must be a numpy array, got {type(a).__name__}")
    if a.dtype.type not in _FLOAT_TYPES:
        raise ValueError(f"{op}: {name} must be float32 (or float64), got {a.dtype}")
    if not a.dtype.isnative:
        raise ValueError(f"{op}: {name} must be float32 or float64 in native byte order, "
                         f"got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise ValueError(f"{op}: {name} is {a.dtype} but the other arguments are {dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dimensions, got shape {a.shape}")
    if a.ndim < min_ndim:
        raise ValueError(f"{op}: {name} must have at least {min_ndim} dimensions, got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous (use np.ascontiguousarray)")
    return a


def same_shape(op: str, name: str, a: np.ndarray, shape: Sequence[int], what: str) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{op}: {name} must have the shape of {what} {tuple(shape)}, "
                         f"got {tuple(a.shape)}")


def like(op: str, ref_name: str, ref: np.ndarray, **arrays):
    """Checks arrays that must share ref's dtype and shape; returns them in order."""
    checked = []
    for name, a in arrays.items():
        a = float_array(op, name, a, dtype=ref.dtype)
        same_shape(op, name, a, ref.shape, ref_name)
        checked.append(a)
    return checked


def pair(op: str, name: str, v: IntOrPair, minimum: Optional[int] = None) -> Tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a (h, w) pair, got {v!r}")
        both = (v[0], v[1])
    else:
        both = (v, v)
    for item in both:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise ValueError(f"{op}: {name} must be an int or a (h, w) pair, got {v!r}")
        if minimum is not None and item < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return int(both[0]), int(both[1])


def number(op: str, name: str, v, minimum=None, maximum=None, exclusive_max=False) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{op}: {name} must be a number, got {v!r}") from None
    if not np.isfinite(f):
        raise ValueError(f"{op}: {name} must be finite, got {v!r}")
    if minimum is not None and f < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    if maximum is not None and (f >= maximum if exclusive_max else f > maximum):
        bound = "<" if exclusive_max else "<="
        raise ValueError(f"{op}: {name} must be {bound} {maximum}, got {v!r}")
    return f


def integer(op: str, name: str, v, minimum: Optional[int] = None) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{op}: {name} must be an int, got {v!r}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return int(v)


def optional_bias(op: str, b, outputs: int, dtype):
    if b is None:
        return None
    b = float_array(op, "b", b, ndim=1, dtype=dtype)
    same_shape(op, "b", b, (outputs,), "the outputs")
    return b


# ---- numpy arrays as tensors --------------------------------------------------------------------

def tensor(a: np.ndarray) -> _core.Tensor:
    """A CPU tensor sharing the memory of a checked array (DLPack, no copy). DLPack cannot say
    "read-only", so numpy refuses to export read-only arrays: those (inputs only; outputs are
    fresh) are copied first."""
    return _core.Tensor.from_dlpack(a if a.flags.writeable else a.copy())


def tensors(arrays) -> list:
    return [tensor(a) for a in arrays]


def optional_tensor(a: Optional[np.ndarray]) -> Optional[_core.Tensor]:
    return None if a is None else tensor(a)
