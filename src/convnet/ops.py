"""Every op of the library on numpy arrays: forward and backward, CPU path.

Arrays are NCHW and C-contiguous. float32 is the library's type; float64 is accepted too (all
float arguments of one call share the dtype, and so does the result), which the gradient checks
use. Mistakes raise ``ValueError`` naming the op and the argument. docs/ops-api.md has the full
semantics; each function's docstring gives shapes.
"""

from __future__ import annotations

import re
from typing import NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core

IntOrPair = Union[int, Tuple[int, int]]

__all__ = [
    "conv_output_size", "conv_forward", "conv_backward",
    "local_forward", "local_backward",
    "fc_forward", "fc_backward",
    "parse_neuron", "neuron_forward", "neuron_backward",
    "lrn_forward", "lrn_backward", "cmrnorm_forward", "cmrnorm_backward",
    "rnorm_forward", "rnorm_backward", "cnorm_forward", "cnorm_backward",
    "pool_output_size", "pool_forward", "pool_backward",
    "eltsum_forward", "eltsum_backward", "eltmax_forward", "eltmax_backward",
    "concat_forward", "concat_backward",
    "dropout_mask", "dropout_forward", "dropout_backward",
    "softmax_forward", "softmax_backward", "softmax_logloss", "SoftmaxLogLoss",
    "sgd_update",
]

_FLOAT_TYPES = (np.float32, np.float64)


# ---- argument checks ----------------------------------------------------------------------------

def _array(op: str, name: str, a, ndim: Optional[int] = None, dtype=None, min_ndim: int = 0):
    """Checks a float array argument; returns it. dtype: the dtype it must share, if known."""
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{op}: {name} must be a numpy array, got {type(a).__name__}")
    if a.dtype.type not in _FLOAT_TYPES:
        raise ValueError(f"{op}: {name} must be float32 (or float64), got {a.dtype}")
    if dtype is not None and a.dtype != dtype:
        raise ValueError(f"{op}: {name} is {a.dtype} but the other arguments are {dtype}")
    if ndim is not None and a.ndim != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dimensions, got shape {a.shape}")
    if a.ndim < min_ndim:
        raise ValueError(f"{op}: {name} must have at least {min_ndim} dimensions, got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError(f"{op}: {name} must be C-contiguous (use np.ascontiguousarray)")
    return a


def _same_shape(op: str, name: str, a: np.ndarray, shape: Sequence[int], what: str) -> None:
    if tuple(a.shape) != tuple(shape):
        raise ValueError(f"{op}: {name} must have the shape of {what} {tuple(shape)}, "
                         f"got {tuple(a.shape)}")


def _like(op: str, ref_name: str, ref: np.ndarray, **arrays):
    """Checks arrays that must share ref's dtype and shape; returns them in order."""
    checked = []
    for name, a in arrays.items():
        a = _array(op, name, a, dtype=ref.dtype)
        _same_shape(op, name, a, ref.shape, ref_name)
        checked.append(a)
    return checked


def _pair(op: str, name: str, v: IntOrPair, minimum: Optional[int] = None) -> Tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{op}: {name} must be an int or a (h, w) pair, got {v!r}")
        pair = (v[0], v[1])
    else:
        pair = (v, v)
    for item in pair:
        if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)):
            raise ValueError(f"{op}: {name} must be an int or a (h, w) pair, got {v!r}")
        if minimum is not None and item < minimum:
            raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return int(pair[0]), int(pair[1])


def _number(op: str, name: str, v, minimum=None, maximum=None, exclusive_max=False) -> float:
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


def _int(op: str, name: str, v, minimum: Optional[int] = None) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        raise ValueError(f"{op}: {name} must be an int, got {v!r}")
    if minimum is not None and v < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {v!r}")
    return int(v)


def _optional_bias(op: str, b, outputs: int, dtype):
    if b is None:
        return None
    b = _array(op, "b", b, ndim=1, dtype=dtype)
    _same_shape(op, "b", b, (outputs,), "the outputs")
    return b


# ---- convolution ----------------------------------------------------------------------------------

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
    if _int(op, "size", size, 1) + 2 * _int(op, "padding", padding, 0) < _int(op, "kernel",
                                                                              kernel, 1):
        raise ValueError(f"{op}: kernel {kernel} does not fit an input of {size} with padding "
                         f"{padding}")
    return _core.conv_output_size(_int(op, "size", size, 1), _int(op, "kernel", kernel, 1),
                                  _int(op, "stride", stride, 1), _int(op, "padding", padding, 0),
                                  rule)


def _conv_geometry(op, x, wshape, stride, padding, groups, rule):
    """Checks the geometry of filters of shape (F, C/groups, KH, KW) on x; returns the core's
    geometry arguments and the output shape."""
    sh, sw = _pair(op, "stride", stride, 1)
    ph, pw = _pair(op, "padding", padding, 0)
    groups = _int(op, "groups", groups, 1)
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


def _conv_args(op, x, w, stride, padding, groups, rule):
    x = _array(op, "x", x, ndim=4)
    w = _array(op, "w", w, ndim=4, dtype=x.dtype)
    geometry, yshape = _conv_geometry(op, x, w.shape, stride, padding, groups, rule)
    return x, w, geometry, yshape


def conv_forward(x, w, b=None, *, stride: IntOrPair = 1, padding: IntOrPair = 0, groups: int = 1,
                 rule: str = "floor") -> np.ndarray:
    """2D convolution (cross-correlation). x (N, C, H, W), w (F, C/groups, KH, KW), b (F,) or
    None -> y (N, F, OH, OW). stride, padding: int or (h, w). Group g maps input channels
    [g*C/G, (g+1)*C/G) to output channels [g*F/G, (g+1)*F/G). rule: see conv_output_size."""
    op = "conv_forward"
    x, w, geometry, yshape = _conv_args(op, x, w, stride, padding, groups, rule)
    b = _optional_bias(op, b, w.shape[0], x.dtype)
    y = np.empty(yshape, dtype=x.dtype)
    _core.conv_forward(x, w, b, y, *geometry)
    return y


def conv_backward(x, w, dy, *, stride: IntOrPair = 1, padding: IntOrPair = 0, groups: int = 1,
                  rule: str = "floor") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of sum(conv_forward(x, w, b) * dy): returns (dx, dw, db) shaped like x, w and
    (F,). Same geometry arguments as conv_forward."""
    op = "conv_backward"
    x, w, geometry, yshape = _conv_args(op, x, w, stride, padding, groups, rule)
    dy = _array(op, "dy", dy, ndim=4, dtype=x.dtype)
    _same_shape(op, "dy", dy, yshape, "the output")
    dx, dw = np.empty_like(x), np.empty_like(w)
    db = np.empty(w.shape[0], dtype=x.dtype)
    _core.conv_backward(x, w, dy, dx, dw, db, *geometry)
    return dx, dw, db


# ---- locally connected ----------------------------------------------------------------------------

def _local_args(op, x, w, stride, padding, groups, rule):
    x = _array(op, "x", x, ndim=4)
    w = _array(op, "w", w, ndim=6, dtype=x.dtype)
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
        b = _array(op, "b", b, ndim=3, dtype=x.dtype)
        _same_shape(op, "b", b, (yshape[1],) + yshape[2:], "(filters, OH, OW)")
    y = np.empty(yshape, dtype=x.dtype)
    _core.local_forward(x, w, b, y, *geometry)
    return y


def local_backward(x, w, dy, *, stride: IntOrPair = 1, padding: IntOrPair = 0, groups: int = 1,
                   rule: str = "floor") -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of sum(local_forward(x, w, b) * dy): (dx, dw, db) shaped like x, w and
    (F, OH, OW)."""
    op = "local_backward"
    x, w, geometry, yshape = _local_args(op, x, w, stride, padding, groups, rule)
    dy = _array(op, "dy", dy, ndim=4, dtype=x.dtype)
    _same_shape(op, "dy", dy, yshape, "the output")
    dx, dw = np.empty_like(x), np.empty_like(w)
    db = np.empty((yshape[1],) + yshape[2:], dtype=x.dtype)
    _core.local_backward(x, w, dy, dx, dw, db, *geometry)
    return dx, dw, db


# ---- fully connected ------------------------------------------------------------------------------

def _fc_args(op, x, w):
    x = _array(op, "x", x, min_ndim=2)
    w = _array(op, "w", w, ndim=2, dtype=x.dtype)
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
    b = _optional_bias(op, b, w.shape[0], x.dtype)
    y = np.empty((x.shape[0], w.shape[0]), dtype=x.dtype)
    _core.fc_forward(x, w, b, y)
    return y


def fc_backward(x, w, dy) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of sum(fc_forward(x, w, b) * dy): (dx shaped like x, dw (M, K), db (M,))."""
    op = "fc_backward"
    x, w = _fc_args(op, x, w)
    dy = _array(op, "dy", dy, ndim=2, dtype=x.dtype)
    _same_shape(op, "dy", dy, (x.shape[0], w.shape[0]), "the output")
    dx, dw = np.empty_like(x), np.empty_like(w)
    db = np.empty(w.shape[0], dtype=x.dtype)
    _core.fc_backward(x, w, dy, dx, dw, db)
    return dx, dw, db


# ---- neurons --------------------------------------------------------------------------------------

_NEURON_SPEC = re.compile(r"^\s*([a-z]+)\s*(?:\[([^\]]*)\])?\s*$")


def parse_neuron(spec: str, op: str = "neuron") -> Tuple[str, float, float]:
    """Parses a cuda-convnet neuron spec ("relu", "tanh[1.7159,0.6667]", "brelu[6]") into
    (name, a, b). Raises ValueError for unknown names or a wrong number of parameters; messages
    start with `op`."""
    if not isinstance(spec, str):
        raise ValueError(f"{op}: neuron must be a spec string like 'relu' or 'tanh[1,1]', "
                         f"got {spec!r}")
    m = _NEURON_SPEC.match(spec)
    if not m:
        raise ValueError(f"{op}: cannot parse neuron spec {spec!r} (expected name or name[a,b])")
    name, params = m.group(1), m.group(2)
    try:
        expected = _core.neuron_param_count(name)
    except ValueError as e:  # an unknown name: the core's message, under this op's name
        raise ValueError(f"{op}: {str(e).removeprefix('neuron: ')}") from None
    values = [] if params is None or params.strip() == "" else params.split(",")
    if len(values) != expected:
        raise ValueError(f"{op}: neuron '{name}' takes {expected} parameter(s) in brackets, "
                         f"got {spec!r}")
    try:
        numbers = [float(v) for v in values]
    except ValueError:
        raise ValueError(f"{op}: neuron parameters must be numbers, got {spec!r}") from None
    defaults = {"tanh": (1.0, 1.0), "linear": (1.0, 0.0)}
    a, b = defaults.get(name, (1.0, 0.0))
    if numbers:
        a = numbers[0]
    if len(numbers) > 1:
        b = numbers[1]
    if name in ("brelu", "drelu") and a <= 0:
        raise ValueError(f"{op}: neuron '{name}' needs a positive parameter, got {spec!r}")
    return name, a, b


def neuron_forward(x, neuron: str) -> np.ndarray:
    """Element-wise activation of any shape; `neuron` is a cuda-convnet spec string: ident, relu,
    logistic, tanh[a,b], abs, square, sqrt, linear[a,b], brelu[a], softrelu, log[a], drelu[a]."""
    op = "neuron_forward"
    x = _array(op, "x", x)
    name, a, b = parse_neuron(neuron, op)
    y = np.empty_like(x)
    _core.neuron_forward(x, y, name, a, b)
    return y


def neuron_backward(x, y, dy, neuron: str) -> np.ndarray:
    """dx for y = neuron_forward(x, neuron) given dy; x, y, dy share one shape."""
    op = "neuron_backward"
    x = _array(op, "x", x)
    y, dy = _like(op, "x", x, y=y, dy=dy)
    name, a, b = parse_neuron(neuron, op)
    dx = np.empty_like(x)
    _core.neuron_backward(x, y, dy, dx, name, a, b)
    return dx


# ---- local response normalisation -----------------------------------------------------------------

def _lrn_core_args(op, size, alpha, beta, k, names=("alpha", "beta", "k")):
    """names: what the caller calls alpha, beta and k (cuda-convnet: scale, pow, min_div)."""
    size = _int(op, "size", size, 1)
    alpha = _number(op, names[0], alpha, minimum=0)
    beta = _number(op, names[1], beta)
    k = _number(op, names[2], k, minimum=0)
    if k == 0 and alpha == 0:
        raise ValueError(f"{op}: {names[2]} and {names[0]} cannot both be 0")
    return size, alpha, beta, k


def _paper_lrn(op, size, alpha, beta, k):
    size, alpha, beta, k = _lrn_core_args(op, size, alpha, beta, k)
    half = size // 2
    return (2 * half + 1, half, False, alpha, beta, k)


def _cmrnorm(op, size, scale, pow, min_div, blocked):
    size, alpha, beta, k = _lrn_core_args(op, size, scale, pow, min_div,
                                           ("scale", "pow", "min_div"))
    if not isinstance(blocked, (bool, np.bool_)):
        raise ValueError(f"{op}: blocked must be True or False, got {blocked!r}")
    return (size, size // 2, bool(blocked), alpha / size, beta, k)


def _lrn_call(op, fn, x, params, y=None, dy=None):
    x = _array(op, "x", x, ndim=4)
    if y is None:
        out = np.empty_like(x)
        fn(x, out, *params)
        return out
    y, dy = _like(op, "x", x, y=y, dy=dy)
    dx = np.empty_like(x)
    fn(x, y, dy, dx, *params)
    return dx


def lrn_forward(x, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                k: float = 2.0) -> np.ndarray:
    """The paper's local response normalisation across maps, x and y (N, C, H, W):
    y[:, i] = x[:, i] / (k + alpha * sum_{j=max(0, i-size//2)}^{min(C-1, i+size//2)} x[:, j]^2)^beta.
    Defaults are the paper's (k=2, n=5, alpha=1e-4, beta=0.75)."""
    op = "lrn_forward"
    return _lrn_call(op, _core.lrn_forward, x, _paper_lrn(op, size, alpha, beta, k))


def lrn_backward(x, y, dy, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 2.0) -> np.ndarray:
    """dx for y = lrn_forward(x, ...) given dy."""
    op = "lrn_backward"
    return _lrn_call(op, _core.lrn_backward, x, _paper_lrn(op, size, alpha, beta, k), y, dy)


def cmrnorm_forward(x, *, size: int, scale: float, pow: float, min_div: float = 1.0,
                    blocked: bool = False) -> np.ndarray:
    """cuda-convnet's cmrnorm: y[:, f] = x[:, f] / (min_div + scale/size * sum_{j in W(f)}
    x[:, j]^2)^pow, W(f) = maps f - size//2 ... f - size//2 + size - 1 clipped to the valid maps,
    or with blocked=True the fixed block of `size` maps holding f."""
    op = "cmrnorm_forward"
    return _lrn_call(op, _core.lrn_forward, x, _cmrnorm(op, size, scale, pow, min_div, blocked))


def cmrnorm_backward(x, y, dy, *, size: int, scale: float, pow: float, min_div: float = 1.0,
                     blocked: bool = False) -> np.ndarray:
    """dx for y = cmrnorm_forward(x, ...) given dy."""
    op = "cmrnorm_backward"
    return _lrn_call(op, _core.lrn_backward, x, _cmrnorm(op, size, scale, pow, min_div, blocked),
                     y, dy)


def _rnorm(op, size, scale, pow, min_div):
    size, alpha, beta, k = _lrn_core_args(op, size, scale, pow, min_div,
                                           ("scale", "pow", "min_div"))
    return (size, size // 2, alpha / (size * size), beta, k)


def rnorm_forward(x, *, size: int, scale: float, pow: float, min_div: float = 1.0) -> np.ndarray:
    """cuda-convnet's rnorm, normalisation within each map: y = x / (min_div + scale/size^2 *
    sum of x^2 over the size x size window)^pow, the window starting size//2 before the pixel on
    each axis and clipped to the image. x and y are (N, C, H, W)."""
    op = "rnorm_forward"
    return _lrn_call(op, _core.rnorm_forward, x, _rnorm(op, size, scale, pow, min_div))


def rnorm_backward(x, y, dy, *, size: int, scale: float, pow: float,
                   min_div: float = 1.0) -> np.ndarray:
    """dx for y = rnorm_forward(x, ...) given dy."""
    op = "rnorm_backward"
    return _lrn_call(op, _core.rnorm_backward, x, _rnorm(op, size, scale, pow, min_div), y, dy)


def cnorm_forward(x, *, size: int, scale: float, pow: float, min_div: float = 1.0) -> np.ndarray:
    """cuda-convnet's cnorm, contrast normalisation within each map: like rnorm_forward, but the
    window sums squared deviations from the local mean (the mean of x over each pixel's own
    window, clipped); the numerator is x itself."""
    op = "cnorm_forward"
    return _lrn_call(op, _core.cnorm_forward, x, _rnorm(op, size, scale, pow, min_div))


def cnorm_backward(x, y, dy, *, size: int, scale: float, pow: float,
                   min_div: float = 1.0) -> np.ndarray:
    """dx for y = cnorm_forward(x, ...) given dy (exact, through the local mean too)."""
    op = "cnorm_backward"
    return _lrn_call(op, _core.cnorm_backward, x, _rnorm(op, size, scale, pow, min_div), y, dy)


# ---- pooling --------------------------------------------------------------------------------------

_POOL_MODES = ("max", "avg")


def pool_output_size(size: int, window: int, stride: int, start: int = 0, outputs: int = 0) -> int:
    """cuda-convnet's rule: outputs if > 0, else ceil((size - start - window) / stride) + 1
    (55 -> 27, 27 -> 13, 13 -> 6 for window 3, stride 2)."""
    op = "pool_output_size"
    return _core.pool_output_size(_int(op, "size", size, 1), _int(op, "window", window, 1),
                                  _int(op, "stride", stride, 1), _int(op, "start", start),
                                  _int(op, "outputs", outputs, 0))


def _pool_args(op, x, mode, size, stride, start, outputs):
    x = _array(op, "x", x, ndim=4)
    if mode not in _POOL_MODES:
        raise ValueError(f"{op}: mode must be one of {_POOL_MODES}, got {mode!r}")
    sh, sw = _pair(op, "size", size, 1)
    th, tw = _pair(op, "stride", stride, 1)
    ah, aw = _pair(op, "start", start)
    outh, outw = _pair(op, "outputs", outputs, 0)
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
    _core.pool_forward(x, y, *params)
    return y


def pool_backward(x, y, dy, *, mode: str, size: IntOrPair, stride: IntOrPair,
                  start: IntOrPair = 0, outputs: IntOrPair = 0) -> np.ndarray:
    """dx for y = pool_forward(x, ...) given dy; max sends dy to every input equal to the max."""
    op = "pool_backward"
    x, params, yshape = _pool_args(op, x, mode, size, stride, start, outputs)
    y = _array(op, "y", y, dtype=x.dtype)
    dy = _array(op, "dy", dy, dtype=x.dtype)
    _same_shape(op, "y", y, yshape, "the output")
    _same_shape(op, "dy", dy, yshape, "the output")
    dx = np.empty_like(x)
    _core.pool_backward(x, y, dy, dx, *params)
    return dx


# ---- element-wise combinations and concatenation -------------------------------------------------

def _inputs(op, xs, same_shape=True):
    if not isinstance(xs, (list, tuple)) or not xs:
        raise ValueError(f"{op}: xs must be a non-empty list of arrays")
    first = _array(op, "xs[0]", xs[0])
    out = [first]
    for i, a in enumerate(xs[1:], start=1):
        a = _array(op, f"xs[{i}]", a, dtype=first.dtype)
        if same_shape:
            _same_shape(op, f"xs[{i}]", a, first.shape, "xs[0]")
        elif a.ndim < 1 or a.shape[0] != first.shape[0]:
            raise ValueError(f"{op}: xs[{i}] must have {first.shape[0]} samples like xs[0], "
                             f"got shape {a.shape}")
        out.append(a)
    return out


def _coeffs(op, coeffs, count):
    if coeffs is None:
        return [1.0] * count
    coeffs = [_number(op, "coeffs", c) for c in coeffs]
    if len(coeffs) != count:
        raise ValueError(f"{op}: {count} inputs need {count} coeffs, got {len(coeffs)}")
    return coeffs


def bias_add_forward(x, b) -> np.ndarray:
    """y = x + b with b of x's per-sample shape, the same for every sample (conv with
    sharedBiases=0: a bias per filter and output position)."""
    op = "bias_add_forward"
    x = _array(op, "x", x, min_ndim=1)
    b = _array(op, "b", b, dtype=x.dtype)
    _same_shape(op, "b", b, x.shape[1:], "a sample of x")
    y = x.copy()
    # The tensor form of the op runs on CPU tensors too; DLPack shares the arrays' memory.
    _core.bias_add_forward_tensor(_core.Tensor.from_dlpack(y), _core.Tensor.from_dlpack(b))
    return y


def bias_add_backward(dy) -> np.ndarray:
    """db = the sum of dy over the batch (axis 0)."""
    op = "bias_add_backward"
    dy = _array(op, "dy", dy, min_ndim=1)
    db = np.empty(dy.shape[1:], dy.dtype)
    _core.bias_add_backward_tensor(_core.Tensor.from_dlpack(dy), _core.Tensor.from_dlpack(db),
                                   0.0)
    return db


def eltsum_forward(xs, coeffs=None) -> np.ndarray:
    """y = sum_i coeffs[i] * xs[i] (cuda-convnet's eltsum); equally shaped inputs, coeffs default
    to 1."""
    op = "eltsum_forward"
    xs = _inputs(op, xs)
    y = np.empty_like(xs[0])
    _core.eltsum_forward(xs, _coeffs(op, coeffs, len(xs)), y)
    return y


def eltsum_backward(dy, coeffs) -> list:
    """[coeffs[i] * dy for each input]."""
    op = "eltsum_backward"
    dy = _array(op, "dy", dy)
    coeffs = [_number(op, "coeffs", c) for c in coeffs]
    dxs = [np.empty_like(dy) for _ in coeffs]
    _core.eltsum_backward(dy, coeffs, dxs)
    return dxs


def eltmax_forward(xs) -> np.ndarray:
    """y = the element-wise maximum of equally shaped inputs (cuda-convnet's eltmax)."""
    op = "eltmax_forward"
    xs = _inputs(op, xs)
    y = np.empty_like(xs[0])
    _core.eltmax_forward(xs, y)
    return y


def eltmax_backward(xs, y, dy) -> list:
    """dy goes to every input equal to the maximum there (ties all receive it)."""
    op = "eltmax_backward"
    xs = _inputs(op, xs)
    y, dy = _like(op, "xs[0]", xs[0], y=y, dy=dy)
    dxs = [np.empty_like(dy) for _ in xs]
    _core.eltmax_backward(xs, y, dy, dxs)
    return dxs


def concat_forward(xs) -> np.ndarray:
    """Each sample's features concatenated (cuda-convnet2's concat): xs[i] (N, ...) read as
    (N, K_i) -> y (N, sum K_i)."""
    op = "concat_forward"
    xs = _inputs(op, xs, same_shape=False)
    n = xs[0].shape[0]
    width = sum(a.size // n if n else 0 for a in xs)
    y = np.empty((n, width), dtype=xs[0].dtype)
    _core.concat_forward(xs, y)
    return y


def concat_backward(dy, shapes) -> list:
    """Splits dy (N, sum K_i) back into gradients of the given input shapes."""
    op = "concat_backward"
    dy = _array(op, "dy", dy, ndim=2)
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
    _core.concat_backward(dy, dxs)
    return dxs


# ---- dropout --------------------------------------------------------------------------------------

def _dropout_args(op, p, seed, step, layer):
    p = _number(op, "p", p, minimum=0.0, maximum=1.0, exclusive_max=True)
    seed = _int(op, "seed", seed, 0)
    step = _int(op, "step", step, 0)
    layer = _int(op, "layer", layer, 0)
    if seed >= 2**64 or step >= 2**64 or layer >= 2**32:
        raise ValueError(f"{op}: seed and step must fit 64 bits and layer 32 bits")
    return p, seed, step, layer


def _dropout_apply(op, fn, name, a, p, seed, step, layer, train, inverted):
    """Forward and backward are the same map (mask times a factor) on x or on dy."""
    a = _array(op, name, a)
    p, seed, step, layer = _dropout_args(op, p, seed, step, layer)
    out = np.empty_like(a)
    fn(a, out, p, seed, step, layer, bool(train), bool(inverted))
    return out


def dropout_mask(shape, *, p: float, seed: int, step: int, layer: int = 0) -> np.ndarray:
    """The keep mask (uint8, 1 = kept) that dropout uses for this (seed, step, layer): element i
    is kept when Philox4x32-10 word i%4 of counter (i//4, step lo, step hi, layer) and key
    (seed lo, seed hi) is below floor((1 - p) * 2^32)."""
    op = "dropout_mask"
    p, seed, step, layer = _dropout_args(op, p, seed, step, layer)
    try:
        shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    except (TypeError, ValueError):
        raise ValueError(f"{op}: shape must be a tuple of ints, got {shape!r}") from None
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: shape must not be negative, got {shape}")
    mask = np.empty(shape, dtype=np.uint8)
    _core.dropout_mask(mask, p, seed, step, layer)
    return mask


def dropout_forward(x, *, p: float = 0.5, seed: int = 0, step: int = 0, layer: int = 0,
                    train: bool = True, inverted: bool = False) -> np.ndarray:
    """Dropout of probability p. Classic (the paper, cuda-convnet's dropout2): train y = x*mask,
    test y = x*(1-p). inverted=True (cuda-convnet2's dropout): train y = x*mask/(1-p), test y = x.
    The mask is dropout_mask(x.shape, p=p, seed=seed, step=step, layer=layer)."""
    return _dropout_apply("dropout_forward", _core.dropout_forward, "x", x, p, seed, step, layer,
                          train, inverted)


def dropout_backward(dy, *, p: float = 0.5, seed: int = 0, step: int = 0, layer: int = 0,
                     train: bool = True, inverted: bool = False) -> np.ndarray:
    """dx for dropout_forward with the same arguments (the mask is regenerated, not stored)."""
    return _dropout_apply("dropout_backward", _core.dropout_backward, "dy", dy, p, seed, step,
                          layer, train, inverted)


# ---- softmax and log-loss -------------------------------------------------------------------------

class SoftmaxLogLoss(NamedTuple):
    probs: np.ndarray   # (N, K) softmax of x
    loss: float         # sum over the batch of -log probs[n, label[n]]
    dx: np.ndarray      # probs - onehot(labels): the gradient of `loss` w.r.t. x
    top1_errors: int    # samples whose label is not the most probable class
    topk_errors: int    # samples whose label is not among the topk most probable


def softmax_forward(x) -> np.ndarray:
    """Row-wise softmax of x (N, K)."""
    op = "softmax_forward"
    x = _array(op, "x", x, ndim=2)
    probs = np.empty_like(x)
    _core.softmax_forward(x, probs)
    return probs


def softmax_backward(y, dy) -> np.ndarray:
    """dx for y = softmax_forward(x) given dy: y * (dy - sum(dy * y, axis=1))."""
    op = "softmax_backward"
    y = _array(op, "y", y, ndim=2)
    (dy,) = _like(op, "y", y, dy=dy)
    dx = np.empty_like(y)
    _core.softmax_backward(y, dy, dx)
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
    x = _array(op, "x", x, ndim=2)
    topk = _int(op, "topk", topk, 1)
    labels = _labels(op, labels, x.shape[0], x.shape[1])
    probs, dx = np.empty_like(x), np.empty_like(x)
    loss, top1, topk_errors = _core.softmax_logloss(x, labels, probs, dx, topk)
    return SoftmaxLogLoss(probs, float(loss), dx, int(top1), int(topk_errors))


# ---- SGD ------------------------------------------------------------------------------------------

def sgd_update(w, grad, v, *, eps: float, mom: float, wc: float) -> None:
    """The paper's update, in place: v <- mom*v - wc*eps*w - eps*grad; w <- w + v.
    w and v must be writeable; w, grad, v share shape and dtype."""
    op = "sgd_update"
    w = _array(op, "w", w)
    grad, v = _like(op, "w", w, grad=grad, v=v)
    for name, a in (("w", w), ("v", v)):
        if not a.flags.writeable:
            raise ValueError(f"{op}: {name} is updated in place and must be writeable")
    if np.shares_memory(w, v):
        raise ValueError(f"{op}: w and v must not share memory")
    _core.sgd_update(w, grad, v, _number(op, "eps", eps), _number(op, "mom", mom),
                     _number(op, "wc", wc))
