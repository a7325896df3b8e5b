"""cuda-convnet's batch format (docs/cuda-convnet-format.md, section 7): pickles `data_batch_N`
holding `data` and `labels`, and `batches.meta` holding `data_mean`, `label_names` and `num_vis`.

Read as written by cuda-convnet (data (num_vis, n), one column per image, R, G, B planes of the
image row-major), by the official python CIFAR-10 release (data (n, num_vis), one row per image;
its test batch is the file `test_batch`, its meta has no data_mean, so the mean is computed) and
by convnet-make-batches (which adds `img_size`, `batch_sizes`, `train_range` and `test_range`).
Python 2 pickles load with latin-1 strings; bytes keys (b'data') are accepted.

Small datasets (up to IN_MEMORY_BYTES of batch files) are loaded at construction, validated and
held as uint8. Larger ones (ImageNet as batches is ~250 GB) are read lazily, a few batches at a
time (an LRU of `cached_batches`): a random order over the whole split then reads one batch per
image, so a loader should visit a lazy dataset batch by batch, see batch_bounds().

Pickles can run code when loaded; this reader only lets through the few numpy and builtin types a
batch file contains, and refuses a file that names anything else.
"""

import collections
import importlib
import os
import pickle
import re
import threading
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..progress import ProgressLine
from .errors import DataError
from .memory import check_finite, check_indices, check_labels, check_split
from .provider import Provider

# Batch files totalling at most this are loaded at once (CIFAR-10: 180 MB); larger datasets are
# read lazily, since holding ImageNet's 250 GB of batches is impossible.
IN_MEMORY_BYTES = 2 << 30

Range = Union[None, str, int, Sequence[int]]

_BATCH_RE = re.compile(r"^data_batch_(\d+)$")
_TEST_BATCH = "test_batch"   # the official python CIFAR-10 release's test set
_TEST_BATCH_NUM = -1         # its internal batch number (never a real data_batch_N)


# ---- safe unpickling ---------------------------------------------------------------------------

def _numpy_module(name: str):
    # Pickles from numpy 1 name numpy.core.*, from numpy 2 numpy._core.*; map both to what exists.
    tail = name.split(".", 2)[2] if name.count(".") >= 2 else ""
    for base in ("numpy._core", "numpy.core"):
        try:
            return importlib.import_module(f"{base}.{tail}" if tail else base)
        except ImportError:
            continue
    raise ImportError(name)


_ALLOWED = {
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"), ("collections", "OrderedDict"),
}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a batch file holds only numpy arrays, lists, "
                f"dicts, numbers and strings")
        if module.startswith(("numpy.core", "numpy._core")):
            return getattr(_numpy_module(module), name)
        return super().find_class(module, name)


def load_pickle(path) -> dict:
    """A batch or meta pickle as a dict with str keys (python 2 pickles: latin-1 strings)."""
    try:
        with open(path, "rb") as f:
            obj = _BatchUnpickler(f, encoding="latin1").load()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except IsADirectoryError:
        raise DataError(path, "is a directory; JPEG sub-batch directories (cuda-convnet2's "
                              "ImageNet format) are not supported, only pickled arrays") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError,
            IndexError, KeyError, MemoryError, OverflowError, UnicodeDecodeError) as e:
        raise DataError(path, f"not a readable pickle (truncated or corrupt?): "
                              f"{type(e).__name__}: {e}") from None
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a pickled dict, found {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _text(v) -> str:
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)


# ---- ranges ------------------------------------------------------------------------------------

def parse_range(spec: Range, what: str = "range") -> Optional[List[int]]:
    """cuda-convnet's batch ranges: "N", "N-M" (inclusive), "1-4,6", or a list of ints."""
    if spec is None:
        return None
    if isinstance(spec, (int, np.integer)):
        return [int(spec)]
    if isinstance(spec, bytes):
        spec = spec.decode()
    if isinstance(spec, str):
        out = []
        for part in spec.replace(" ", "").split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise ValueError(f"{what} {spec!r}: expected 'N', 'N-M' or a comma-separated list "
                                 f"of these, with batch numbers >= 0")
            a, b = int(m.group(1)), int(m.group(2) or m.group(1))
            if b < a:
                raise ValueError(f"{what} {spec!r}: {a}-{b} is empty (the end comes before the "
                                 f"start)")
            out.extend(range(a, b + 1))
        return out
    try:
        return [int(v) for v in spec]
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected 'N', 'N-M' or a list of ints, got {spec!r}") from None


def format_range(nums: Sequence[int]) -> str:
    """The inverse of parse_range for contiguous runs: [1, 2, 3, 5] -> "1-3,5"."""
    parts, nums = [], sorted(nums)
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        parts.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ",".join(parts)


def meta_image_shape(meta: dict, where: str) -> Tuple[int, int, int]:
    """The (C, H, W) of the images that batches.meta (`meta`, read from `where`) describes:
    num_vis values each (or data_mean's count), square, 3 channels unless img_size says 1."""
    mean = meta.get("data_mean")
    num_vis = meta.get("num_vis", None if mean is None else np.asarray(mean).size)
    if num_vis is None:
        raise DataError(where, "neither num_vis nor data_mean is given, so the image size "
                               "is unknown")
    num_vis = int(num_vis)
    if "img_size" in meta:
        s = int(meta["img_size"])
        c, rem = divmod(num_vis, s * s) if s > 0 else (0, 1)
        if rem or c not in (1, 3):
            raise DataError(where, f"num_vis {num_vis} is not 1 or 3 channels of "
                                   f"img_size {s} x {s}")
    else:
        c = 3
        s = round((num_vis / 3) ** 0.5)
        if 3 * s * s != num_vis:
            raise DataError(where, f"num_vis {num_vis} is not 3 x s x s for an integer s "
                                   f"(add img_size to batches.meta for other shapes)")
    return (c, s, s)


def batches_image_shape(path) -> Tuple[int, int, int]:
    """The (C, H, W) of a folder of batches' images, from batches.meta alone (no batch is read)."""
    where = os.path.join(os.fspath(path), "batches.meta")
    return meta_image_shape(load_pickle(where), where)


# ---- the provider ------------------------------------------------------------------------------

class CifarBatches(Provider):
    """A folder of cuda-convnet batches. train_range / test_range: batch numbers ("1-5", "6",
    [1, 2]); by default those in batches.meta (convnet-make-batches writes them), else all batches
    but the last for training and the last for testing (the official release: data_batch_1..5
    train, test_batch tests); when only one is given the other is the remaining batches.
    in_memory: None decides by the files' size (IN_MEMORY_BYTES); cached_batches: how many
    batches a lazy provider keeps decoded."""

    name = "cifar"

    def __init__(self, path, train_range: Range = None, test_range: Range = None,
                 in_memory: Optional[bool] = None, cached_batches: int = 3):
        self.path = os.fspath(path)
        if not os.path.isdir(self.path):
            raise DataError(self.path, "not a directory (expected a folder of cuda-convnet "
                                       "batches: batches.meta and data_batch_N files)")
        self._meta_path = os.path.join(self.path, "batches.meta")
        meta = load_pickle(self._meta_path)
        self._files = self._find_batches()
        self._read_meta(meta)
        self._splits = self._choose_ranges(meta, train_range, test_range)
        used = sorted(set(self._splits["train"]) | set(self._splits["test"]))
        nbytes = sum(os.path.getsize(self._files[n]) for n in used)
        self.in_memory = nbytes <= IN_MEMORY_BYTES if in_memory is None else bool(in_memory)
        self._lock = threading.Lock()
        self._lru: "collections.OrderedDict[int, Tuple[np.ndarray, np.ndarray]]" = \
            collections.OrderedDict()
        self._cached = max(1, int(cached_batches))
        self._held: Dict[int, Tuple[np.ndarray, np.ndarray]] = {}
        self._sizes: Dict[int, int] = {}
        if self.in_memory:
            for n in used:
                self._held[n] = self._load_batch(n)
                self._sizes[n] = len(self._held[n][1])
        else:
            self._sizes = self._lazy_sizes(meta, used)
        self._starts = {s: np.cumsum([0] + [self._sizes[n] for n in nums])
                        for s, nums in self._splits.items()}
        if self.size("train") == 0:
            raise DataError(self.path, f"the training batches {self._splits['train']} hold no "
                                       f"images")
        if self._mean is None:
            self._mean = self._compute_mean()

    # ---- construction helpers ------------------------------------------------------------------

    def _find_batches(self) -> Dict[int, str]:
        files = {}
        for entry in sorted(os.listdir(self.path)):
            m = _BATCH_RE.match(entry)
            if m:
                files[int(m.group(1))] = os.path.join(self.path, entry)
            elif entry == _TEST_BATCH:
                files[_TEST_BATCH_NUM] = os.path.join(self.path, entry)
        if not files:
            raise DataError(self.path, "no batch files (expected data_batch_1, data_batch_2, ... "
                                       "next to batches.meta)")
        return files

    def _read_meta(self, meta: dict) -> None:
        where = self._meta_path
        if "label_names" not in meta:
            raise DataError(where, f"no label_names (found keys: {sorted(map(str, meta))})")
        self.label_names = [_text(v) for v in meta["label_names"]]
        self.classes = len(self.label_names)
        if self.classes < 1:
            raise DataError(where, "label_names is empty")
        mean = meta.get("data_mean")
        self.image_shape = meta_image_shape(meta, where)
        self.num_vis = num_vis = int(np.prod(self.image_shape))
        if mean is not None:
            mean = np.asarray(mean, dtype=np.float64)
            if mean.size != num_vis:
                raise DataError(where, f"data_mean has {mean.size} values (shape {mean.shape}) "
                                       f"but num_vis is {num_vis}")
            mean = mean.reshape(self.image_shape).astype(np.float32)
            check_finite(where + " (data_mean)", mean)
        self._mean = mean

    def _choose_ranges(self, meta, train_range, test_range) -> Dict[str, List[int]]:
        train = parse_range(train_range, "train_range")
        test = parse_range(test_range, "test_range")
        if train is None and "train_range" in meta:
            train = parse_range(meta["train_range"], "batches.meta train_range")
        if test is None and "test_range" in meta:
            test = parse_range(meta["test_range"], "batches.meta test_range")
        numbered = sorted(n for n in self._files if n != _TEST_BATCH_NUM)
        has_test_batch = _TEST_BATCH_NUM in self._files
        if has_test_batch:   # official CIFAR-10: data_batch_1..5 train, test_batch tests
            train = numbered if train is None else train
            test = [_TEST_BATCH_NUM] if test is None else test
        elif train is None and test is None:   # cuda-convnet's habit: the last batch tests
            train, test = numbered[:-1], numbered[-1:]
        elif train is None:
            train = [n for n in numbered if n not in test]
        elif test is None:
            test = [n for n in numbered if n not in train]
        for what, nums in (("train_range", train), ("test_range", test)):
            missing = [n for n in nums if n not in self._files]
            if missing:
                raise DataError(self.path, f"{what} asks for batches {missing}, which do not exist "
                                           f"(found data_batch_{format_range(numbered)})")
        if not train:
            raise DataError(self.path, f"no training batches (found data_batch_"
                                       f"{format_range(numbered)}; with one batch, give "
                                       f"train_range and test_range explicitly)")
        return {"train": list(train), "test": list(test)}

    def _lazy_sizes(self, meta, used) -> Dict[int, int]:
        known = meta.get("batch_sizes")   # written by convnet-make-batches
        sizes = {}
        if isinstance(known, dict):
            sizes = {int(k): int(v) for k, v in known.items() if int(k) in used}
        missing = [n for n in used if n not in sizes]
        progress = ProgressLine("cifar batches: reading sizes", len(missing), unit="batches")
        for i, n in enumerate(missing):
            # Without batch_sizes the only way to learn a batch's size is to read it, once.
            sizes[n] = len(self._load_batch(n)[1])
            progress.update(i + 1, final=i + 1 == len(missing))
        return sizes

    def _load_batch(self, n: int) -> Tuple[np.ndarray, np.ndarray]:
        """Batch n as ((count, C, H, W) uint8 or float32, int64 labels), validated."""
        path = self._files[n]
        d = load_pickle(path)
        for key in ("data", "labels"):
            if key not in d:
                raise DataError(path, f"no '{key}' entry (found keys: {sorted(map(str, d))})")
        data, labels = d["data"], d["labels"]
        if isinstance(data, (list, tuple)):
            raise DataError(path, "data is a list (JPEG-compressed cuda-convnet2 batches are not "
                                  "supported; expected a (num_vis, n) array)")
        labels = check_labels(path, labels, self.classes)
        count = len(labels)
        data = np.asarray(data)
        if data.ndim != 2:
            raise DataError(path, f"data must be a 2-D array (num_vis, n) or (n, num_vis), got "
                                  f"shape {data.shape}")
        if data.shape == (self.num_vis, count):      # cuda-convnet: one column per image
            data = data.T
        elif data.shape != (count, self.num_vis):    # official release: one row per image
            raise DataError(path, f"data has shape {data.shape}, expected ({self.num_vis}, "
                                  f"{count}) (num_vis from batches.meta, one column per image for "
                                  f"its {count} labels) or ({count}, {self.num_vis})")
        if data.dtype == np.uint8:
            pass
        elif data.dtype.kind == "f":
            data = data.astype(np.float32, copy=False)
            check_finite(path, data)
        elif data.dtype.kind in "iu":
            if data.size and (data.min() < 0 or data.max() > 255):
                raise DataError(path, f"integer data must lie in 0..255, found "
                                      f"{data.min()}..{data.max()}")
            data = data.astype(np.uint8)
        else:
            raise DataError(path, f"data must be uint8 or float, got dtype {data.dtype}")
        return np.ascontiguousarray(data).reshape((count,) + self.image_shape), labels

    def _compute_mean(self) -> np.ndarray:
        if not self.in_memory:
            raise DataError(self._meta_path, "no data_mean, and the dataset is too large to "
                                             "compute it here (convnet-make-batches writes it)")
        total = np.zeros(self.image_shape, np.float64)
        for n in self._splits["train"]:
            total += self._held[n][0].sum(axis=0, dtype=np.float64)
        return (total / self.size("train")).astype(np.float32)

    # ---- access --------------------------------------------------------------------------------

    def _batch(self, n: int) -> Tuple[np.ndarray, np.ndarray]:
        if self.in_memory:
            if n not in self._held:
                raise DataError(self.path, "the provider was closed")
            return self._held[n]
        with self._lock:
            if n in self._lru:
                self._lru.move_to_end(n)
                return self._lru[n]
            batch = self._load_batch(n)
            if len(batch[1]) != self._sizes[n]:
                raise DataError(self._files[n], f"holds {len(batch[1])} images but batches.meta "
                                                f"(batch_sizes) says {self._sizes[n]}")
            self._lru[n] = batch
            while len(self._lru) > self._cached:
                self._lru.popitem(last=False)
            return batch

    def batch_numbers(self, split: str) -> List[int]:
        """The batch numbers of a split, in order (-1 stands for the file test_batch)."""
        return list(self._splits[check_split(split)])

    def batch_bounds(self, split: str) -> List[Tuple[int, int]]:
        """[start, stop) of each batch's images within the split: the locality hint for lazy
        datasets, where visiting batch by batch reads each file once per epoch."""
        st = self._starts[check_split(split)]
        return [(int(a), int(b)) for a, b in zip(st[:-1], st[1:])]

    def size(self, split: str) -> int:
        return int(self._starts[check_split(split)][-1])

    def images(self, split: str, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        idx = check_indices(self.path, check_split(split), indices, self.size(split))
        x = np.empty((len(idx),) + self.image_shape, np.float32)
        y = np.empty(len(idx), np.int64)
        which = np.searchsorted(self._starts[split], idx, side="right") - 1
        nums = self._splits[split]
        for b in np.unique(which):
            sel = np.flatnonzero(which == b)
            data, labels = self._batch(nums[b])
            local = idx[sel] - self._starts[split][b]
            x[sel] = data[local]
            y[sel] = labels[local]
        x -= self._mean
        return x, y

    def close(self) -> None:
        with self._lock:
            self._lru.clear()
        self._held = {}
