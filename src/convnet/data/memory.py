"""In-memory numpy arrays as a provider, for data that is already loaded (the Python API's way in),
the base of the providers that hold their splits in memory whole, and the index and label checks
that every provider of this package shares.

The arrays are kept as given (uint8 stays uint8, a quarter of float32's memory) and converted and
mean-subtracted per batch in images(), so a caller's 50k x 3 x 32 x 32 set is not copied four
times. Do not modify them while the provider is in use.
"""

from typing import List, Optional, Sequence, Tuple

import numpy as np

from .errors import DataError
from .provider import Provider

SPLITS = ("train", "test")
ARRAY_PATH = "<array>"   # what DataError names for data that came from no file


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    return split


def check_indices(where, split: str, indices: Sequence[int], size: int) -> np.ndarray:
    """`indices` as an int64 array, each in 0 .. size-1 of `split`; a DataError names `where`
    otherwise. Negative indices are refused rather than wrapped: the trainer never asks for one,
    so one is a bug upstream that wrapping would hide."""
    idx = np.asarray(indices)
    if idx.ndim != 1:
        idx = idx.reshape(-1)
    if idx.size == 0:
        return idx.astype(np.int64)
    if not np.issubdtype(idx.dtype, np.integer):
        if np.issubdtype(idx.dtype, np.floating) and np.all(idx == np.round(idx)):
            idx = idx.astype(np.int64)
        else:
            raise DataError(where, f"indices of the {split} split must be integers, "
                                   f"got dtype {idx.dtype}")
    idx = idx.astype(np.int64, copy=False)
    bad = (idx < 0) | (idx >= size)
    if bad.any():
        raise DataError(where, f"index {int(idx[bad][0])} is out of range for the {split} split, "
                               f"which has {size} images (valid: 0..{size - 1})")
    return idx


def check_labels(where, labels, classes: int, what: str = "label") -> np.ndarray:
    """`labels` as an int64 vector in 0 .. classes-1; a DataError names `where`, the position and
    the value otherwise (a wrong label trains silently into a wrong net, so it is never clipped)."""
    y = np.asarray(labels)
    if y.ndim == 2 and 1 in y.shape:      # cuda-convnet's (1, n) label matrices
        y = y.reshape(-1)
    if y.ndim != 1:
        raise DataError(where, f"{what}s must be a vector, got an array of shape {y.shape}")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
            pass   # cuda-convnet stores labels as float32 matrices
        else:
            raise DataError(where, f"{what}s must be integers 0..{classes - 1}, found dtype "
                                   f"{y.dtype} (first value {y.reshape(-1)[0]!r})")
    y = y.astype(np.int64)
    bad = (y < 0) | (y >= classes)
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(where, f"{what} {int(y[pos])} at position {pos} is outside "
                               f"0..{classes - 1} ({classes} classes)")
    return y


def check_finite(where, x: np.ndarray) -> None:
    """Float images with NaN or inf would poison the mean and then every gradient; refuse them."""
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise DataError(where, f"{bad} pixel values are NaN or infinite")


class InMemoryProvider(Provider):
    """A provider whose splits are held in memory whole: self._x[split] the images as stored,
    self._y[split] their int64 labels. A subclass names its source for errors (_where) and turns
    stored images into float32 (N, C, H, W) (_as_float); the mean subtraction happens here."""

    _where: str

    def _as_float(self, stored: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def size(self, split: str) -> int:
        return len(self._x[check_split(split)])

    def images(self, split: str, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        idx = check_indices(self._where, check_split(split), indices, self.size(split))
        x = self._as_float(self._x[split][idx])
        x -= self._mean
        return x, self._y[split][idx].copy()

    def labels(self, split: str) -> np.ndarray:
        return self._y[check_split(split)].copy()

    def close(self) -> None:
        self._x, self._y = {}, {}


class ArrayDataset(InMemoryProvider):
    """Numpy arrays as a provider: `train` and `test` are (x, y) with x uint8 or float (N, C, H, W)
    and y N integer labels. `classes` defaults to len(label_names), else to the largest label + 1;
    `label_names` to "0", "1", ... With subtract_mean the training set's mean image is subtracted
    (the paper's preprocessing), otherwise mean is zeros."""

    name = "array"
    _where = ARRAY_PATH

    def __init__(self, train: Tuple[np.ndarray, Sequence[int]],
                 test: Tuple[np.ndarray, Sequence[int]], classes: Optional[int] = None,
                 label_names: Optional[List[str]] = None, subtract_mean: bool = True):
        splits = {}
        for split, pair in (("train", train), ("test", test)):
            try:
                x, y = pair
            except (TypeError, ValueError):
                raise DataError(ARRAY_PATH, f"{split} must be a pair (images, labels), "
                                            f"got {type(pair).__name__}") from None
            splits[split] = (self._images(split, x), y)
        shapes = {s: x.shape[1:] for s, (x, _) in splits.items()}
        if shapes["train"] != shapes["test"]:
            raise DataError(ARRAY_PATH, f"train images are {shapes['train']} (C, H, W) but test "
                                        f"images are {shapes['test']}; they must agree")
        if splits["train"][0].shape[0] == 0:
            raise DataError(ARRAY_PATH, "the training split is empty")
        if label_names is not None:
            label_names = [str(n) for n in label_names]
            if classes is not None and classes != len(label_names):
                raise DataError(ARRAY_PATH, f"classes={classes} but {len(label_names)} "
                                            f"label_names were given")
            classes = len(label_names)
        if classes is None:
            top = [int(np.max(y)) for _, y in splits.values() if len(y)]
            classes = max(top) + 1 if top else 0
        if classes < 1:
            raise DataError(ARRAY_PATH, f"needs at least one class, got classes={classes}")
        self.classes = int(classes)
        self.label_names = label_names or [str(i) for i in range(self.classes)]
        self._x, self._y = {}, {}
        for split, (x, y) in splits.items():
            labels = check_labels(f"{ARRAY_PATH} ({split} labels)", y, self.classes)
            if len(labels) != x.shape[0]:
                raise DataError(ARRAY_PATH, f"the {split} split has {x.shape[0]} images but "
                                            f"{len(labels)} labels")
            self._x[split], self._y[split] = x, labels
        self.image_shape = tuple(int(s) for s in shapes["train"])
        if subtract_mean:
            # float64 accumulation: a float32 running sum over 10^6 images loses ~3 digits.
            self._mean = self._x["train"].mean(axis=0, dtype=np.float64).astype(np.float32)
        else:
            self._mean = np.zeros(self.image_shape, np.float32)

    @staticmethod
    def _images(split, x) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 4:
            raise DataError(ARRAY_PATH, f"{split} images must be (N, C, H, W), got shape {x.shape}")
        if x.dtype == np.uint8:
            return x
        if x.dtype.kind not in "fiu":
            raise DataError(ARRAY_PATH, f"{split} images must be uint8 or float, got {x.dtype}")
        x = x.astype(np.float32, copy=False)
        check_finite(f"{ARRAY_PATH} ({split} images)", x)
        return x

    def _as_float(self, stored: np.ndarray) -> np.ndarray:
        return stored.astype(np.float32)
