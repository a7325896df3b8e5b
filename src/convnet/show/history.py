"""The learning curves in a checkpoint's history: one entry per test (see Trainer._test_and_save)
with the step, the epoch (fractional), the learning-rate scale and, per cost layer, the training
metrics averaged since the previous test and the test metrics ("train/<layer>/<metric>",
"test/<layer>/<metric>")."""

import re
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from .run import ShowError


@dataclass
class CostCurves:
    steps: np.ndarray              # (T,) the step of each test
    epochs: np.ndarray             # (T,) the epoch (fractional) of each test
    lr_scale: np.ndarray           # (T,) the learning-rate scale in force at each test
    # metric ("loss", "top1_error", ...) -> series ("train/<layer>", "test/<layer>") -> (T,),
    # NaN where an entry lacks it
    metrics: Dict[str, Dict[str, np.ndarray]]
    # (step, old scale, new scale) where the scale changed between two tests: the change was
    # made at the first of the two (after its test), so it marks that step
    lr_changes: List[Tuple[int, float, float]]


def _metric_order(name: str):
    # loss first, then the error rates by k (top1, top5, ...), then anything else by name
    if name == "loss":
        return (0, 0, name)
    m = re.fullmatch(r"top(\d+)_error", name)
    return (1, int(m.group(1)), name) if m else (2, 0, name)


def cost_curves(history: List[dict]) -> CostCurves:
    if not history:
        raise ShowError("the checkpoint has no training history: no test ran before it was saved "
                        "(train for at least --test-freq batches), or it was written by Net.save")
    history = sorted(history, key=lambda e: e.get("step", 0))
    steps = np.array([int(e.get("step", 0)) for e in history])
    epochs = np.array([float(e.get("epoch", np.nan)) for e in history])
    lr = np.array([float(e.get("lr_scale", 1.0)) for e in history])
    keys = sorted({k for e in history for k in e if k.count("/") == 2})
    metrics: Dict[str, Dict[str, np.ndarray]] = {}
    for key in keys:
        split, layer, metric = key.split("/")
        series = np.array([float(e.get(key, np.nan)) for e in history])
        metrics.setdefault(metric, {})[f"{split}/{layer}"] = series
    metrics = {m: dict(sorted(metrics[m].items(), key=lambda kv: (kv[0].split("/")[1],
                                                                   kv[0].split("/")[0] != "train")))
               for m in sorted(metrics, key=_metric_order)}
    changes = [(int(steps[i]), float(lr[i]), float(lr[i + 1])) for i in range(len(lr) - 1)
               if not np.isclose(lr[i], lr[i + 1], rtol=1e-9, atol=0.0)]
    return CostCurves(steps=steps, epochs=epochs, lr_scale=lr, metrics=metrics,
                      lr_changes=changes)
