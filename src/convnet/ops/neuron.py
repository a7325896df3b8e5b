"""Neurons, cuda-convnet's element-wise activations, over numpy arrays of any shape. The spec
syntax ("relu", "tanh[a,b]") is parsed by convnet.config.values.parse_neuron, which config files
share."""

import numpy as np

from .. import _core
from ..config.values import parse_neuron
from ._checks import float_array, like, tensor

__all__ = ["parse_neuron", "neuron_forward", "neuron_backward"]


def neuron_forward(x, neuron: str) -> np.ndarray:
    """Element-wise activation of any shape; `neuron` is a cuda-convnet spec string: ident, relu,
    logistic, tanh[a,b], abs, square, sqrt, linear[a,b], brelu[a], softrelu, log[a], drelu[a]."""
    op = "neuron_forward"
    x = float_array(op, "x", x)
    name, a, b = parse_neuron(neuron, op)
    y = np.empty_like(x)
    _core.neuron_forward(tensor(x), tensor(y), name, a, b)
    return y


def neuron_backward(x, y, dy, neuron: str) -> np.ndarray:
    """dx for y = neuron_forward(x, neuron) given dy; x, y, dy share one shape."""
    op = "neuron_backward"
    x = float_array(op, "x", x)
    y, dy = like(op, "x", x, y=y, dy=dy)
    name, a, b = parse_neuron(neuron, op)
    dx = np.empty_like(x)
    _core.neuron_backward(tensor(x), tensor(y), tensor(dy), tensor(dx), name, a, b)
    return dx
