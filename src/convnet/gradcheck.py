"""Whole-net gradient checking: central differences of Net.objective against Net.gradients at a
few random elements of each parameter. convnet-train --check-grads and the tests both run it;
each judges the errors with its own tolerance."""

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

# In float64, a step of 1e-6 leaves truncation (~1e-12) and rounding (~1e-10) errors relative to
# the loss far below any real gradient error, which is O(1) relative.
STEP = 1e-6
# A relu or a max-pool choice that flips within STEP of the point (a kink) makes the central
# difference wrong although the gradient is right. A kink is at some distance from the point, so
# it drops out at a smaller step, while a wrong gradient stays wrong at every step; at 1e-8 float64
# rounding still costs only ~1e-8 relative.
KINK_STEP = 1e-8


@dataclass(frozen=True)
class GradientSample:
    """One checked element: parameter name, flat index, and the two derivatives."""
    name: str
    index: int
    analytic: float
    numeric: float

    def relative_error(self, floor: float) -> float:
        """|numeric - analytic| / max(|numeric|, |analytic|, floor); the floor makes tiny
        derivatives compare absolutely."""
        return abs(self.numeric - self.analytic) / max(abs(self.numeric), abs(self.analytic),
                                                       floor)


@dataclass
class GradientCheck:
    gradients: Dict[str, np.ndarray]   # Net.gradients at the unperturbed parameters
    samples: List[GradientSample]


def check_net_gradients(net, x, labels, rng: np.random.Generator, *,
                        names: Optional[Sequence[str]] = None, samples: int, step: float = STEP,
                        report: Optional[Callable[[GradientSample], None]] = None
                        ) -> GradientCheck:
    """Compares net.gradients(x, labels) with central differences of net.objective at `samples`
    elements of each named parameter (all of them by default), drawn from rng without
    replacement. Run it on a float64 net: float32 rounding swamps the differences. Every
    parameter is restored afterwards; report, when given, sees each sample as it is measured."""
    grads = net.gradients(x, labels)
    checked = []
    for name in (grads if names is None else names):
        size = grads[name].size
        for idx in rng.choice(size, size=min(samples, size), replace=False):
            sample = GradientSample(name, int(idx), grads[name].reshape(-1)[idx],
                                    numeric_derivative(net, x, labels, name, int(idx), step))
            checked.append(sample)
            if report is not None:
                report(sample)
    return GradientCheck(grads, checked)


def numeric_derivative(net, x, labels, name: str, index: int, step: float = STEP) -> float:
    """The central difference of net.objective with respect to element `index` (flat) of
    parameter `name`; the parameter is restored afterwards."""
    value = net.params[name]
    flat = value.reshape(-1)
    original = flat[index]
    try:
        flat[index] = original + step
        net.params[name] = value
        up = net.objective(x, labels)
        flat[index] = original - step
        net.params[name] = value
        down = net.objective(x, labels)
    finally:
        flat[index] = original
        net.params[name] = value
    return (up - down) / (2 * step)
