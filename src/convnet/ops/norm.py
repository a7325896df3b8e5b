"""The normalisations over numpy arrays (N, C, H, W): the paper's local response normalisation
across maps, cuda-convnet's cmrnorm (the same op in cuda-convnet's terms), and rnorm and cnorm
within each map."""

import numpy as np

from .. import _core
from ..config.values import norm_alpha
from ._checks import float_array, integer, like, number, tensor

__all__ = ["lrn_forward", "lrn_backward", "cmrnorm_forward", "cmrnorm_backward", "rnorm_forward",
           "rnorm_backward", "cnorm_forward", "cnorm_backward"]


def _core_args(op, size, alpha, beta, k, names=("alpha", "beta", "k")):
    """names: what the caller calls alpha, beta and k (cuda-convnet: scale, pow, min_div)."""
    size = integer(op, "size", size, 1)
    alpha = number(op, names[0], alpha, minimum=0)
    beta = number(op, names[1], beta)
    k = number(op, names[2], k, minimum=0)
    if k == 0 and alpha == 0:
        raise ValueError(f"{op}: {names[2]} and {names[0]} cannot both be 0")
    return size, alpha, beta, k


def _cuda_convnet_args(op, size, scale, pow, min_div):
    return _core_args(op, size, scale, pow, min_div, ("scale", "pow", "min_div"))


def _paper_lrn(op, size, alpha, beta, k):
    size, alpha, beta, k = _core_args(op, size, alpha, beta, k)
    half = size // 2
    return (2 * half + 1, half, False, alpha, beta, k)


def _cmrnorm(op, size, scale, pow, min_div, blocked):
    size, scale, beta, k = _cuda_convnet_args(op, size, scale, pow, min_div)
    if not isinstance(blocked, (bool, np.bool_)):
        raise ValueError(f"{op}: blocked must be True or False, got {blocked!r}")
    return (size, size // 2, bool(blocked), norm_alpha("cmrnorm", scale, size), beta, k)


def _within_map(op, layer_type, size, scale, pow, min_div):
    size, scale, beta, k = _cuda_convnet_args(op, size, scale, pow, min_div)
    return (size, size // 2, norm_alpha(layer_type, scale, size), beta, k)


def _call(op, core_op, x, params, y=None, dy=None) -> np.ndarray:
    """Forward (y is None) or backward: checks the arrays, allocates the result, runs core_op."""
    x = float_array(op, "x", x, ndim=4)
    if y is None:
        out = np.empty_like(x)
        core_op(tensor(x), tensor(out), *params)
        return out
    y, dy = like(op, "x", x, y=y, dy=dy)
    dx = np.empty_like(x)
    core_op(tensor(x), tensor(y), tensor(dy), tensor(dx), *params)
    return dx


def lrn_forward(x, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                k: float = 2.0) -> np.ndarray:
    """The paper's local response normalisation across maps, x and y (N, C, H, W):
    y[:, i] = x[:, i] / (k + alpha * sum_{j=max(0, i-size//2)}^{min(C-1, i+size//2)} x[:, j]^2)^beta.
    Defaults are the paper's (k=2, n=5, alpha=1e-4, beta=0.75)."""
    op = "lrn_forward"
    return _call(op, _core.lrn_forward, x, _paper_lrn(op, size, alpha, beta, k))


def lrn_backward(x, y, dy, *, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
                 k: float = 2.0) -> np.ndarray:
    """dx for y = lrn_forward(x, ...) given dy."""
    op = "lrn_backward"
    return _call(op, _core.lrn_backward, x, _paper_lrn(op, size, alpha, beta, k), y, dy)


def cmrnorm_forward(x, *, size: int, scale: float, pow: float, min_div: float = 1.0,
                    blocked: bool = False) -> np.ndarray:
    """cuda-convnet's cmrnorm: y[:, f] = x[:, f] / (min_div + scale/size * sum_{j in W(f)}
    x[:, j]^2)^pow, W(f) = maps f - size//2 ... f - size//2 + size - 1 clipped to the valid maps,
    or with blocked=True the fixed block of `size` maps holding f."""
    op = "cmrnorm_forward"
    return _call(op, _core.lrn_forward, x, _cmrnorm(op, size, scale, pow, min_div, blocked))


def cmrnorm_backward(x, y, dy, *, size: int, scale: float, pow: float, min_div: float = 1.0,
                     blocked: bool = False) -> np.ndarray:
    """dx for y = cmrnorm_forward(x, ...) given dy."""
    op = "cmrnorm_backward"
    return _call(op, _core.lrn_backward, x, _cmrnorm(op, size, scale, pow, min_div, blocked),
                 y, dy)


def rnorm_forward(x, *, size: int, scale: float, pow: float, min_div: float = 1.0) -> np.ndarray:
    """cuda-convnet's rnorm, normalisation within each map: y = x / (min_div + scale/size^2 *
    sum of x^2 over the size x size window)^pow, the window starting size//2 before the pixel on
    each axis and clipped to the image. x and y are (N, C, H, W)."""
    op = "rnorm_forward"
    return _call(op, _core.rnorm_forward, x, _within_map(op, "rnorm", size, scale, pow, min_div))


def rnorm_backward(x, y, dy, *, size: int, scale: float, pow: float,
                   min_div: float = 1.0) -> np.ndarray:
    """dx for y = rnorm_forward(x, ...) given dy."""
    op = "rnorm_backward"
    return _call(op, _core.rnorm_backward, x, _within_map(op, "rnorm", size, scale, pow, min_div),
                 y, dy)


def cnorm_forward(x, *, size: int, scale: float, pow: float, min_div: float = 1.0) -> np.ndarray:
    """cuda-convnet's cnorm, contrast normalisation within each map: like rnorm_forward, but the
    window sums squared deviations from the local mean (the mean of x over each pixel's own
    window, clipped); the numerator is x itself."""
    op = "cnorm_forward"
    return _call(op, _core.cnorm_forward, x, _within_map(op, "cnorm", size, scale, pow, min_div))


def cnorm_backward(x, y, dy, *, size: int, scale: float, pow: float,
                   min_div: float = 1.0) -> np.ndarray:
    """dx for y = cnorm_forward(x, ...) given dy (exact, through the local mean too)."""
    op = "cnorm_backward"
    return _call(op, _core.cnorm_backward, x, _within_map(op, "cnorm", size, scale, pow, min_div),
                 y, dy)
