"""cuda-convnet's neurons (docs/ops-api.md; docs/cuda-convnet-format.md, section 3) and their
derivatives, from the formulas, with the points where a derivative jumps (for the gradient check's
kink skip)."""

import numpy as np


def _params(spec):
    name, _, rest = spec.partition("[")
    values = [float(v) for v in rest.rstrip("]").split(",")] if rest else []
    return name, values


def forward(x, spec):
    x = np.asarray(x, np.float64)
    name, p = _params(spec)
    if name == "ident":
        return x.copy()
    if name == "relu":
        return np.maximum(x, 0)
    if name == "logistic":
        return 1 / (1 + np.exp(-x))
    if name == "tanh":
        return p[0] * np.tanh(p[1] * x)
    if name == "abs":
        return np.abs(x)
    if name == "square":
        return x * x
    if name == "sqrt":
        return np.sqrt(x)
    if name == "linear":
        return p[0] * x + p[1]
    if name == "brelu":
        return np.minimum(np.maximum(x, 0), p[0])
    if name == "softrelu":
        return np.log1p(np.exp(x))
    if name == "log":
        return np.log(p[0] + x)
    if name == "drelu":
        return x - p[0] * np.tanh(x / p[0])
    raise ValueError(spec)


def derivative(x, spec):
    """dy/dx at x (the kinks of relu/abs/brelu take the one-sided value cuda-convnet uses)."""
    x = np.asarray(x, np.float64)
    name, p = _params(spec)
    if name == "ident":
        return np.ones_like(x)
    if name == "relu":
        return (x > 0).astype(np.float64)
    if name == "logistic":
        s = 1 / (1 + np.exp(-x))
        return s * (1 - s)
    if name == "tanh":
        return p[0] * p[1] * (1 - np.tanh(p[1] * x) ** 2)
    if name == "abs":
        return np.sign(x)
    if name == "square":
        return 2 * x
    if name == "sqrt":
        return 0.5 / np.sqrt(x)
    if name == "linear":
        return np.full_like(x, p[0])
    if name == "brelu":
        return ((x > 0) & (x < p[0])).astype(np.float64)
    if name == "softrelu":
        return 1 / (1 + np.exp(-x))
    if name == "log":
        return 1 / (p[0] + x)
    if name == "drelu":
        return np.tanh(x / p[0]) ** 2
    raise ValueError(spec)


def kinks(spec):
    """The x values at which the derivative is discontinuous."""
    name, p = _params(spec)
    return {"relu": [0.0], "abs": [0.0], "brelu": [0.0, p[0] if p else 0.0]}.get(name, [])


def backward(x, dy, spec):
    return np.asarray(dy, np.float64) * derivative(x, spec)
