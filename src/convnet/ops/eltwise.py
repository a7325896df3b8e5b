"""Element-wise combinations (eltsum, eltmax), the unshared bias and per-sample concatenation
over numpy arrays."""

import numpy as np

from .. import _core
from ._checks import float_array, like, number, same_shape, tensor, tensors

__all__ = ["bias_add_forward", "bias_add_backward", "eltsum_forward", "eltsum_backward",
           "eltmax_forward", "eltmax_backward", "concat_forward", "concat_backward"]


def _inputs(op, xs, same_shape_as_first=True):
    if not isinstance(xs, (list, tuple)) or not xs:
        raise ValueError(f"{op}: xs must be a non-empty list of arrays")
    first = float_array(op, "xs[0]", xs[0])
    out = [first]
    for i, a in enumerate(xs[1:], start=1):
        a = float_array(op, f"xs[{i}]", a, dtype=first.dtype)
        if same_shape_as_first:
            same_shape(op, f"xs[{i}]", a, first.shape, "xs[0]")
        elif a.ndim < 1 or a.shape[0] != first.shape[0]:
            raise ValueError(f"{op}: xs[{i}] must have {first.shape[0]} samples like xs[0], "
                             f"got shape {a.shape}")
        out.append(a)
    return out


def _coeffs(op, coeffs, count):
    if coeffs is None:
        return [1.0] * count
    coeffs = [number(op, "coeffs", c) for c in coeffs]
    if len(coeffs) != count:
        raise ValueError(f"{op}: {count} inputs need {count} coeffs, got {len(coeffs)}")
    return coeffs


def bias_add_forward(x, b) -> np.ndarray:
    """y = x + b with b of x's per-sample shape, the same for every sample (conv with
    sharedBiases=0: a bias per filter and output position)."""
    op = "bias_add_forward"
    x = float_array(op, "x", x, min_ndim=1)
    b = float_array(op, "b", b, dtype=x.dtype)
    same_shape(op, "b", b, x.shape[1:], "a sample of x")
    y = x.copy()
    _core.bias_add_forward(tensor(y), tensor(b))
    return y


def bias_add_backward(dy) -> np.ndarray:
    """db = the sum of dy over the batch (axis 0)."""
    op = "bias_add_backward"
    dy = float_array(op, "dy", dy, min_ndim=1)
    db = np.empty(dy.shape[1:], dy.dtype)
    _core.bias_add_backward(tensor(dy), tensor(db))
    return db


def eltsum_forward(xs, coeffs=None) -> np.ndarray:
    """y = sum_i coeffs[i] * xs[i] (cuda-convnet's eltsum); equally shaped inputs, coeffs default
    to 1."""
    op = "eltsum_forward"
    xs = _inputs(op, xs)
    y = np.empty_like(xs[0])
    _core.eltsum_forward(tensors(xs), _coeffs(op, coeffs, len(xs)), tensor(y))
    return y


def eltsum_backward(dy, coeffs) -> list:
    """[coeffs[i] * dy for each input]."""
    op = "eltsum_backward"
    dy = float_array(op, "dy", dy)
    coeffs = [number(op, "coeffs", c) for c in coeffs]
    dxs = [np.empty_like(dy) for _ in coeffs]
    _core.eltsum_backward(tensor(dy), coeffs, tensors(dxs))
    return dxs


def eltmax_forward(xs) -> np.ndarray:
    """y = the element-wise maximum of equally shaped inputs (cuda-convnet's eltmax)."""
    op = "eltmax_forward"
    xs = _inputs(op, xs)
    y = np.empty_like(xs[0])
    _core.eltmax_forward(tensors(xs), tensor(y))
    return y


def eltmax_backward(xs, y, dy) -> list:
    """dy goes to every input equal to the maximum there (ties all receive it)."""
    op = "eltmax_backward"
    xs = _inputs(op, xs)
    y, dy = like(op, "xs[0]", xs[0], y=y, dy=dy)
    dxs = [np.empty_like(dy) for _ in xs]
    _core.eltmax_backward(tensors(xs), tensor(y), tensor(dy), tensors(dxs))
    return dxs


def concat_forward(xs) -> np.ndarray:
    """Each sample's features concatenated (cuda-convnet2's concat): xs[i] (N, ...) read as
    (N, K_i) -> y (N, sum K_i)."""
    op = "concat_forward"
    xs = _inputs(op, xs, same_shape_as_first=False)
    n = xs[0].shape[0]
    width = sum(a.size // n if n else 0 for a in xs)
    y = np.empty((n, width), dtype=xs[0].dtype)
    _core.concat_forward(tensors(xs), tensor(y))
    return y


def concat_backward(dy, shapes) -> list:
    """Splits dy (N, sum K_i) back into gradients of the given input shapes."""
    op = "concat_backward"
    dy = float_array(op, "dy", dy, ndim=2)
    try:
        shapes = [tuple(int(d) for d in s) for s in shapes]
    except (TypeError, ValueError):
        raise ValueError(f"{op}: shapes must be a list of shape tuples") from None
    if any(len(s) < 1 or s[0] != dy.shape[0] for s in shapes):
        raise ValueError(f"{op}: every shape in shapes must start with dy's {dy.shape[0]} "
                         f"samples, got {shapes}")
    width = sum(int(np.prod(s[1:])) for s in shapes)
    if width != dy.shape[1]:
        raise ValueError(f"{op}: shapes hold {width} features per sample but dy has "
                         f"{dy.shape[1]}")
    dxs = [np.empty(s, dtype=dy.dtype) for s in shapes]
    _core.concat_backward(tensor(dy), tensors(dxs))
    return dxs
