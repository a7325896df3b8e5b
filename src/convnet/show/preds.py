"""Test images and the net's most probable classes for them (the paper's Figure 4, left). The
test data is opened the way convnet-train opened it for the run: the data options the checkpoint
stores go through convnet-train's own make_data, so a provider, crop or synthetic set reads
exactly as in training; --data-path overrides the stored path (data that moved)."""

import contextlib
import io
import sys
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from ..data.errors import DataError
from .run import ShowError


@dataclass
class Predictions:
    images: np.ndarray         # (N, H, W, 3) or (N, H, W) for display, values in [0, 1]
    labels: np.ndarray         # (N,) true classes
    top_classes: np.ndarray    # (N, k) most probable classes, most probable first
    top_probs: np.ndarray      # (N, k) their probabilities
    class_names: List[str]     # a name per class (the provider's, else the index)


def open_test_data(net, data_path: Optional[str] = None,
                   data_provider: Optional[str] = None, options: Optional[dict] = None):
    """The dataset the net was trained on (its test split is what predictions read). options:
    the run's data options (Run.data_options: the synthetic set's sizes too); default, those
    the net keeps of real data."""
    from ..cli import train   # convnet-train's parser defaults and its make_data
    args = train.build_parser().parse_args([])
    args.seed = net.seed
    info = net.data_info or {}
    saved = options or info.get("options") or {}
    if data_path is not None:
        args.data_path, args.data_provider = data_path, data_provider
    else:
        for key, value in saved.items():
            if hasattr(args, key):
                setattr(args, key, value)
        if data_provider is not None:
            args.data_provider = data_provider
        if info.get("provider") not in (None, "synthetic") and not args.data_path:
            raise ShowError(f"the run trained on {info['provider']} data but its checkpoint does "
                            "not say where it is: give --data-path")
    errors = io.StringIO()
    where = f" at {args.data_path}" if args.data_path else ""
    try:
        with contextlib.redirect_stderr(errors):
            data = train.make_data(args, net)
    except (DataError, OSError, ValueError) as e:
        raise ShowError(f"cannot open the test data{where}: {e}") from None
    except SystemExit:
        # make_data reports bad data as convnet-train would; say it in convnet-show's words
        message = errors.getvalue().strip().replace("convnet-train: error: ", "")
        raise ShowError(f"cannot open the test data{where}: {message}"
                        + ("" if data_path else " (--data-path gives another location)")) from None
    sys.stderr.write(errors.getvalue())    # warnings of a data set that did open
    return data


def class_names(data, net, classes: int) -> List[str]:
    names = getattr(data, "label_names", None) or (net.data_info or {}).get("label_names") or []
    names = [str(n) for n in names]
    return names if len(names) >= classes else [str(k) for k in range(classes)]


def display_images(data, x: np.ndarray) -> np.ndarray:
    """The network's input images as pictures: the provider's mean image (centre-cropped like the
    test images) added back to 8-bit values; without a mean (the synthetic set), each image
    stretched to [0, 1]."""
    provider = getattr(data, "provider", None)
    mean = None
    try:
        mean = None if provider is None else np.asarray(provider.mean, np.float32)
    except NotImplementedError:
        pass
    n, c, h, w = x.shape
    if mean is not None and mean.ndim == 3 and mean.shape[1] >= h and mean.shape[2] >= w:
        top, left = (mean.shape[1] - h) // 2, (mean.shape[2] - w) // 2
        shown = np.clip((x + mean[:, top:top + h, left:left + w]) / 255.0, 0.0, 1.0)
    else:
        lo = x.min(axis=(1, 2, 3), keepdims=True)
        span = np.maximum(x.max(axis=(1, 2, 3), keepdims=True) - lo, 1e-12)
        shown = (x - lo) / span
    shown = shown.transpose(0, 2, 3, 1)
    return shown[..., 0] if c != 3 else shown[..., :3]


def predictions(net, data, count: int = 8, top: int = 5) -> Predictions:
    """The first `count` test images, their labels and the net's `top` most probable classes."""
    n = min(count, data.size("test"))
    if n < 1:
        raise ShowError("the test set is empty")
    x, labels = data.batch("test", np.arange(n))
    probs = np.asarray(net.predict(x), np.float64).reshape(n, -1)
    k = min(top, probs.shape[1])
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return Predictions(images=display_images(data, np.asarray(x, np.float32)),
                       labels=np.asarray(labels, np.int64), top_classes=order,
                       top_probs=np.take_along_axis(probs, order, axis=1),
                       class_names=class_names(data, net, probs.shape[1]))
