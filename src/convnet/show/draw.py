"""The PNG files: matplotlib's object-oriented API on its Agg canvas (no display, no pyplot
state, so a caller's own matplotlib session is left alone). Every figure has a fixed size in
pixels, given by the *_size functions, so the files are the same size from run to run."""

import math
import os
from typing import Tuple

import numpy as np

from ..files import atomic_write
from .filters import FilterGrid
from .history import CostCurves
from .neighbours import NeighbourPictures
from .preds import Predictions
from .run import ShowError

DPI = 100
COST_WIDTH, COST_ROW_HEIGHT = 1000, 340
PREDS_COLUMNS, PREDS_CELL = 4, (300, 400)      # a cell: the image and its bars, in pixels
NEIGHBOURS_CELL, NEIGHBOURS_TITLE = 130, 60     # pixels per image (square), and for the title
FILTERS_MARGIN, FILTERS_TITLE, FILTERS_MIN_WIDTH = 10, 40, 420
LR_MARKS_MAX = 12      # more changes than this (the exp schedule): the lr panel alone shows them


def _figure(width_px: int, height_px: int):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ShowError("convnet-show draws with matplotlib, which is not installed: "
                        'pip install "convnet[show]" (or pip install matplotlib)') from None
    fig = Figure(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        with atomic_write(path, durable=False) as f:
            fig.savefig(f, format="png", dpi=DPI)
        # atomic_write's temporary file is private (0600); a picture is for anyone to open
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(path, 0o666 & ~mask)
    except OSError as e:
        raise ShowError(f"cannot write {path}: {e}") from None
    return path


# ---- learning curves ---------------------------------------------------------------------------

def cost_size(curves: CostCurves) -> Tuple[int, int]:
    panels = len(curves.metrics) + 1      # and the learning-rate scale
    return COST_WIDTH, COST_ROW_HEIGHT * math.ceil(panels / 2)


def _metric_label(metric: str) -> str:
    if metric == "loss":
        return "log-loss"
    if metric.startswith("top") and metric.endswith("_error"):
        return f"top-{metric[3:-6]} error (%)"
    return metric


def _epoch_axis(ax, curves: CostCurves) -> None:
    """Epochs on the top axis, from the steps and epochs the tests recorded (a resumed run may
    change the batches per epoch, so this interpolates rather than divides)."""
    steps = np.concatenate([[0.0], curves.steps.astype(float)])
    epochs = np.concatenate([[0.0], curves.epochs])
    ok = np.all(np.diff(steps) > 0) and np.all(np.diff(epochs) > 0) and np.all(np.isfinite(epochs))
    if not ok:
        return

    def extrapolate(x, xs, ys):
        x = np.asarray(x, float)
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        return np.where(x > xs[-1], ys[-1] + (x - xs[-1]) * slope,
                        np.where(x < 0, x * (ys[1] / xs[1]), np.interp(x, xs, ys)))
    top = ax.secondary_xaxis("top", functions=(lambda s: extrapolate(s, steps, epochs),
                                               lambda e: extrapolate(e, epochs, steps)))
    top.set_xlabel("epoch")


def save_cost(curves: CostCurves, path: str, title: str = "") -> str:
    width, height = cost_size(curves)
    fig = _figure(width, height)
    panels = list(curves.metrics) + ["lr_scale"]
    rows = math.ceil(len(panels) / 2)
    axes = fig.subplots(rows, 2, squeeze=False).ravel()
    marks = curves.lr_changes if len(curves.lr_changes) <= LR_MARKS_MAX else []
    for ax, metric in zip(axes, panels):
        if metric == "lr_scale":
            # an entry's scale is the one its preceding steps trained with: a change made at a
            # test shows from that test's step on, where the red dash marks it
            ax.step(curves.steps, curves.lr_scale, where="pre", color="black")
            ax.set_yscale("log")
            ax.set_title("learning-rate scale (lr_scale)")
            for step, old, new in marks:
                ax.annotate(f"x{new / old:.3g}", (step, new), textcoords="offset points",
                            xytext=(6, 8), fontsize=8, color="tab:red")
        else:
            scale = 100.0 if metric.endswith("_error") else 1.0
            for name, series in curves.metrics[metric].items():
                split, layer = name.split("/")
                many = len(curves.metrics[metric]) > 2
                label = f"{split} ({layer})" if many else split
                style = dict(marker="o", markersize=3, linewidth=1.8) if split == "test" else \
                    dict(linewidth=1.0, alpha=0.8)
                ax.plot(curves.steps, scale * series, label=label, **style)
            ax.set_title(_metric_label(metric))
            ax.legend(fontsize=8)
        for step, _, _ in marks:
            ax.axvline(step, color="tab:red", linestyle="--", linewidth=0.8)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        _epoch_axis(ax, curves)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    note = f"; red dashes: learning-rate changes ({len(marks)})" if marks else ""
    fig.suptitle(f"{title}  (train: mean over the batches since the previous test{note})",
                 fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


# ---- filters -----------------------------------------------------------------------------------

def filters_zoom(grid: FilterGrid) -> int:
    """Screen pixels per weight: the grid about 900 pixels wide, at most 1200 tall."""
    h, w = grid.image.shape[:2]
    return max(1, min(12, 900 // w, 1200 // h))


def filters_size(grid: FilterGrid) -> Tuple[int, int]:
    h, w = grid.image.shape[:2]
    z = filters_zoom(grid)
    return (max(w * z + 2 * FILTERS_MARGIN, FILTERS_MIN_WIDTH),
            h * z + 2 * FILTERS_MARGIN + FILTERS_TITLE)


def save_filters(grid: FilterGrid, path: str, title: str = "") -> str:
    width, height = filters_size(grid)
    h, w = grid.image.shape[:2]
    z = filters_zoom(grid)
    fig = _figure(width, height)
    fig.set_facecolor("white")
    # the image axes placed to the pixel, so each weight is a z x z square
    ax = fig.add_axes(((width - w * z) / 2 / width, FILTERS_MARGIN / height,
                       w * z / width, h * z / height))
    ax.set_axis_off()
    if grid.colour:
        rgba = np.dstack([np.nan_to_num(grid.image, nan=1.0),
                          np.where(np.isnan(grid.image[..., :1]), 0.0, 1.0)])
        ax.imshow(rgba, interpolation="nearest")
    else:
        from matplotlib import colormaps
        cmap = colormaps["gray"].with_extremes(bad="white")
        ax.imshow(np.ma.masked_invalid(grid.image), cmap=cmap, vmin=0, vmax=1,
                  interpolation="nearest")
    fig.text(0.5, 1 - (FILTERS_TITLE / 2) / height, title, ha="center", va="center",
             fontsize=9, wrap=True)
    return _save(fig, path)


# ---- predictions -------------------------------------------------------------------------------

def preds_size(preds: Predictions) -> Tuple[int, int]:
    n = len(preds.labels)
    cols = min(PREDS_COLUMNS, n)
    return PREDS_CELL[0] * cols, PREDS_CELL[1] * math.ceil(n / cols)


def save_preds(preds: Predictions, path: str, title: str = "") -> str:
    width, height = preds_size(preds)
    n = len(preds.labels)
    cols = min(PREDS_COLUMNS, n)
    rows = math.ceil(n / cols)
    fig = _figure(width, height)
    # per row of images: the images, their bars, and room for the next row's titles
    grid = fig.add_gridspec(3 * rows, cols, height_ratios=[12, 8, 2] * rows, hspace=0.1,
                            wspace=0.15, left=0.02, right=0.98, top=1 - 50 / height,
                            bottom=0.0)
    names = preds.class_names
    for i in range(n):
        r, c = divmod(i, cols)
        image_ax = fig.add_subplot(grid[3 * r, c])
        image = preds.images[i]
        image_ax.imshow(image, cmap="gray" if image.ndim == 2 else None,
                        interpolation="nearest")
        image_ax.set_xticks([])
        image_ax.set_yticks([])
        truth = int(preds.labels[i])
        right = int(preds.top_classes[i, 0]) == truth
        image_ax.set_title(names[truth], fontsize=9,
                           color="black" if right else "tab:red")
        bars = fig.add_subplot(grid[3 * r + 1, c])
        k = preds.top_classes.shape[1]
        colours = ["tab:red" if int(cl) == truth else "tab:blue" for cl in preds.top_classes[i]]
        bars.barh(np.arange(k), preds.top_probs[i], color=colours, height=0.8, alpha=0.55)
        bars.set_xlim(0, 1)
        bars.set_ylim(k - 0.5, -0.5)
        bars.set_yticks([])
        bars.tick_params(axis="x", labelsize=7)
        for j, cl in enumerate(preds.top_classes[i]):
            bars.text(0.02, j, f"{names[int(cl)]}  {preds.top_probs[i, j]:.2f}", va="center",
                      fontsize=7)
    fig.suptitle(f"{title}  (bars: the {preds.top_classes.shape[1]} most probable classes; red: "
                 "the true class; title red when the top guess is wrong)", fontsize=9,
                 y=1 - 12 / height, va="top")
    return _save(fig, path)


# ---- nearest neighbours ------------------------------------------------------------------------

def neighbours_size(pics: NeighbourPictures) -> Tuple[int, int]:
    q, k = pics.neighbour_labels.shape
    return NEIGHBOURS_CELL * (k + 1), NEIGHBOURS_CELL * q + NEIGHBOURS_TITLE


def save_neighbours(pics: NeighbourPictures, path: str, title: str = "") -> str:
    width, height = neighbours_size(pics)
    q, k = pics.neighbour_labels.shape
    fig = _figure(width, height)
    grid = fig.add_gridspec(q, k + 1, hspace=0.3, wspace=0.08, left=0.01, right=0.99,
                            top=1 - NEIGHBOURS_TITLE / height, bottom=0.01)
    names = pics.class_names
    for i in range(q):
        truth = int(pics.query_labels[i])
        cells = [(pics.queries[i], f"test: {names[truth]}", "black")]
        for j in range(k):
            label = int(pics.neighbour_labels[i, j])
            cells.append((pics.neighbours[i, j], f"{names[label]}  d={pics.distances[i, j]:.3g}",
                          "black" if label == truth else "tab:red"))
        for j, (image, text, colour) in enumerate(cells):
            ax = fig.add_subplot(grid[i, j])
            ax.imshow(image, cmap="gray" if image.ndim == 2 else None, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(text, fontsize=7, color=colour)
            if j == 0:
                for spine in ax.spines.values():
                    spine.set_edgecolor("tab:blue")
                    spine.set_linewidth(2)
    fig.suptitle(f"{title}\n(first column: test images, framed; then the {k} training images "
                 f"whose {pics.layer} features are nearest; red: another class)", fontsize=9,
                 y=1 - 6 / height, va="top")
    return _save(fig, path)
