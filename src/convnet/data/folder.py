"""ImageNet-style image folders: path/train/<class>/<image files> and path/val/<class>/... (or
test/), decoded with Pillow and brought to the paper's input: "rescaled so that the shorter side
is 256, then the central 256x256 patch is cropped", minus the training set's mean image.

Decoding rules (load_image):
* any file Pillow opens (JPEG, PNG, BMP, GIF, WebP, TIFF ...), first frame of an animation, EXIF
  orientation applied (the image as a viewer shows it);
* converted to 8-bit RGB: greyscale repeated, palette expanded, CMYK and YCbCr by Pillow's
  conversion, 16-bit greyscale scaled by 255/65535 (Pillow's own conversion would clip it);
* alpha (RGBA, LA, PA, palette or colour-key transparency) is composited on black, i.e. the colour
  is multiplied by the opacity. Dropping alpha instead would expose whatever colour the writer left
  under transparent pixels, often garbage; black is deterministic and is what resampling a
  premultiplied image assumes;
* the shorter side rescaled to `size` and the centre size x size square cropped, done as one
  bilinear (antialiased when shrinking) resampling of the exact centre square of the original.

Hidden files and folders (name starting with '.') are ignored everywhere. The mean image and the
class list are computed once and cached (see _cache_files); bad files are handled as described in
ImageFolder.
"""

import collections
import concurrent.futures as cf
import hashlib
import os
import sys
import threading
import warnings
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..files import atomic_write
from .errors import DataError
from .memory import check_indices, check_labels, check_split
from ..progress import ProgressLine
from .provider import Provider

# Smaller than this on a side is not a photograph (tracking pixels, icons, broken thumbnails);
# stretched to 256 it would be pure interpolation.
MIN_SIDE = 8
CACHE_VERSION = 1            # bump when load_image's output changes, to invalidate old caches
_CHUNK = 32                  # images per task in the mean and verification passes
_VAL_NAMES = ("val", "test")


def _pil():
    global _BILINEAR
    try:
        from PIL import Image, ImageOps
    except ImportError:   # pragma: no cover - pillow is a dependency of the data layer
        raise ImportError("image folders need Pillow: pip install pillow") from None
    _BILINEAR = getattr(Image, "Resampling", Image).BILINEAR
    return Image, ImageOps


_BILINEAR = None


def _to_rgb(im, path, fmt):
    """An 8-bit RGB Pillow image from any mode (rules in the module docstring)."""
    Image, _ = _pil()
    mode = im.mode
    if mode.startswith("I;16") or (mode == "I" and fmt == "PNG"):
        a = np.asarray(im, dtype=np.float64)   # 16-bit samples: scale, do not clip
        return Image.fromarray(np.clip(np.rint(a * (255 / 65535)), 0, 255).astype(np.uint8)
                               ).convert("RGB")
    if mode in ("I", "F"):
        raise DataError(path, f"unsupported pixel format {mode} (32-bit samples, of no known "
                              f"range); convert the image to 8-bit")
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if not has_alpha:
        return im if mode == "RGB" else im.convert("RGB")
    if mode == "La":
        im = im.convert("LA")
    a = np.asarray(im.convert("RGBA"), dtype=np.uint32)
    rgb = (a[..., :3] * a[..., 3:] + 127) // 255   # composite on black, rounded
    return Image.fromarray(rgb.astype(np.uint8))


def load_image(path, size: int) -> np.ndarray:
    """The file as uint8 (3, size, size): RGB, shorter side scaled to size, centre crop. Any
    failure (unreadable, truncated, tiny, unsupported mode) is a DataError naming the file."""
    Image, ImageOps = _pil()
    try:
        with Image.open(path) as im:
            w, h = im.size
            if min(w, h) < MIN_SIDE:
                raise DataError(path, f"tiny image: {w}x{h} pixels, images need at least "
                                      f"{MIN_SIDE} pixels on each side")
            fmt = im.format
            im.load()   # decode now: a truncated file fails here, not as grey garbage
            try:
                im = ImageOps.exif_transpose(im)
            except Exception:   # a broken EXIF block: the pixels are fine, keep them as stored
                pass
            im = _to_rgb(im, path, fmt)
            w, h = im.size
            side = min(w, h)
            box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
            im = im.resize((size, size), _BILINEAR, box=box)
            out = np.asarray(im, dtype=np.uint8)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(path, "file not found (was it removed after the folder was indexed?)"
                        ) from None
    except Image.UnidentifiedImageError:
        raise DataError(path, "not an image Pillow can read") from None
    except Image.DecompressionBombError as e:
        raise DataError(path, f"image too large for Pillow's safety limit ({e})") from None
    except MemoryError:
        raise
    except Exception as e:   # Pillow's plugins raise OSError, SyntaxError, ValueError, EOFError...
        raise DataError(path, f"corrupt or truncated image ({type(e).__name__}: {e})") from None
    if out.shape != (size, size, 3):
        raise DataError(path, f"decoded to shape {out.shape}, expected ({size}, {size}, 3)")
    return out.transpose(2, 0, 1)


def _visible(name: str) -> bool:
    return not name.startswith(".")


def _list_files(root: str) -> List[str]:
    """Files under root (recursively, following links once), sorted, hidden ones left out."""
    out, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:         # a symlink cycle
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if _visible(d))
        out.extend(os.path.join(dirpath, f) for f in filenames if _visible(f))
    return sorted(out)


def _fingerprint(base: str, files: Sequence[str]) -> str:
    h = hashlib.sha256()
    for f in files:
        try:
            st = os.stat(f)
        except OSError as e:
            raise DataError(f, f"cannot stat: {e.strerror}") from None
        h.update(f"{os.path.relpath(f, base)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class ImageFolder(Provider):
    """path/train/<class>/* and path/val/<class>/* (or test/) as a provider of uint8 images
    scaled to (3, size, size), minus the training mean.

    Classes are the sorted train/ subfolders; val/ may hold a subset of them (an unknown class
    folder is an error). At construction every training image is decoded once to compute the mean
    (`workers` threads) and every val image once to check it; the result is cached, keyed by a
    fingerprint of names, sizes and mtimes, so later constructions only list the files.

    Bad files (unreadable, truncated, tiny, unsupported): a DataError naming the first found, by
    default. With skip_bad_images=True they are dropped from the index, a warning gives their
    number and `skipped` lists (path, problem). An empty class folder, or a class left without
    training images, is an error either way: it would silently change the label set. A file that
    goes bad after indexing is a DataError in images(), never garbage.
    """

    name = "folder"

    def __init__(self, path, size: int = 256, skip_bad_images: bool = False,
                 workers: Optional[int] = None, progress: bool = True):
        self.path = os.path.abspath(os.fspath(path))
        self.size_px = int(size)
        if self.size_px < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.skip_bad_images = bool(skip_bad_images)
        self.workers = max(1, int(workers) if workers else min(8, os.cpu_count() or 1))
        self.progress = progress
        self.image_shape = (3, self.size_px, self.size_px)
        self._pool: Optional[cf.ThreadPoolExecutor] = None
        self._pool_lock = threading.Lock()
        self.skipped: List[Tuple[str, str]] = []
        self.cache_file = ""   # where the mean and the checks were read from or written to
        from PIL import ImageFile
        if ImageFile.LOAD_TRUNCATED_IMAGES:
            warnings.warn("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is set (by some other code): "
                          "truncated images decode with grey filler instead of being reported",
                          stacklevel=2)

        train_dir = os.path.join(self.path, "train")
        if not os.path.isdir(self.path):
            raise DataError(self.path, "no such folder")
        if not os.path.isdir(train_dir):
            raise DataError(self.path, "no train/ folder (expected train/<class>/<images> and "
                                       "val/<class>/<images>)")
        val_dir = next((os.path.join(self.path, v) for v in _VAL_NAMES
                        if os.path.isdir(os.path.join(self.path, v))), None)
        if val_dir is None:
            raise DataError(self.path, "no val/ or test/ folder next to train/ (the test split; "
                                       "move some images there)")
        self.val_dir = val_dir
        classes = sorted(d for d in os.listdir(train_dir)
                         if _visible(d) and os.path.isdir(os.path.join(train_dir, d)))
        if not classes:
            raise DataError(train_dir, "no class folders (expected train/<class>/<images>)")
        self.label_names, self.classes = classes, len(classes)
        lookup = {c: i for i, c in enumerate(classes)}

        train = self._index(train_dir, lookup, empty_ok=False)
        unknown = sorted(d for d in os.listdir(val_dir) if _visible(d) and d not in lookup
                         and os.path.isdir(os.path.join(val_dir, d)))
        if unknown:
            raise DataError(os.path.join(val_dir, unknown[0]),
                            f"class folder not in train/ ({len(unknown)} unknown: "
                            f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}); "
                            f"the splits must use the same class names")
        val = self._index(val_dir, lookup, empty_ok=True)
        if not val:
            raise DataError(val_dir, "no images (the test split needs some)")
        self.fingerprint = {"train": _fingerprint(self.path, [f for f, _ in train]),
                            "test": _fingerprint(self.path, [f for f, _ in val])}

        cache = self._read_cache()
        if "train_fp" in cache:
            self._mean, train_bad = cache["mean"], cache["train_bad"]
        else:
            self._mean, train_bad = self._mean_pass(train)
        val_bad = cache["val_bad"] if "val_fp" in cache else self._verify_pass(val)
        if "train_fp" in cache and "val_fp" in cache:
            self.cache_file = cache["file"]
        else:
            self.cache_file = self._write_cache(train_bad, val_bad)

        bad = train_bad + val_bad
        if bad and not self.skip_bad_images:
            f, problem = bad[0]
            raise DataError(os.path.join(self.path, f),
                            f"{problem} ({len(bad)} bad file(s) in all; skip_bad_images=True "
                            f"drops them)")
        drop = {f for f, _ in bad}
        self._files = {"train": [(f, y) for f, y in train if self._rel(f) not in drop],
                       "test": [(f, y) for f, y in val if self._rel(f) not in drop]}
        if bad:
            self.skipped = [(os.path.join(self.path, f), p) for f, p in bad]
            warnings.warn(f"{self.path}: skipped {len(bad)} bad image file(s) "
                          f"({len(train_bad)} train, {len(val_bad)} {os.path.basename(val_dir)}); "
                          f"see .skipped", stacklevel=2)
        counts = np.bincount([y for _, y in self._files["train"]], minlength=self.classes)
        if (counts == 0).any():
            c = classes[int(np.flatnonzero(counts == 0)[0])]
            raise DataError(os.path.join(train_dir, c), "class has no usable training images "
                                                        "left after skipping bad files")
        self._labels = {s: np.array([y for _, y in v], np.int64) for s, v in self._files.items()}

    # ---- indexing ------------------------------------------------------------------------------

    def _rel(self, f: str) -> str:
        return os.path.relpath(f, self.path)

    def _index(self, split_dir: str, lookup: dict, empty_ok: bool) -> List[Tuple[str, int]]:
        out = []
        for name in sorted(os.listdir(split_dir)):
            full = os.path.join(split_dir, name)
            if not _visible(name) or not os.path.isdir(full):
                if _visible(name):
                    warnings.warn(f"{full}: ignored, a file outside any class folder",
                                  stacklevel=3)
                continue
            files = _list_files(full)
            if not files and not empty_ok:
                raise DataError(full, "empty class folder (every class of train/ needs images; "
                                      "remove the folder to drop the class)")
            out.extend((f, lookup[name]) for f in files)
        return out

    # ---- the one-off passes --------------------------------------------------------------------

    def _run_pass(self, what: str, files: List[str], accumulate: bool):
        """Decode `files` in chunks on the thread pool. Returns (sum of the good images as int64
        or None, [(relative path, problem)] of the bad ones). Without skip_bad_images the first
        bad file ends the pass with its DataError."""
        total = np.zeros(self.image_shape, np.int64) if accumulate else None
        bad: List[Tuple[str, str]] = []
        chunks = [files[i:i + _CHUNK] for i in range(0, len(files), _CHUNK)]
        progress = ProgressLine(f"{os.path.basename(self.path)}: {what}", len(files)) \
            if self.progress and files else None
        size = self.size_px

        def work(chunk):
            s = np.zeros(self.image_shape, np.int64) if accumulate else None
            errs = []
            for f in chunk:
                try:
                    img = load_image(f, size)
                except DataError as e:
                    if not self.skip_bad_images:
                        raise
                    errs.append((self._rel(f), e.problem))
                    continue
                if accumulate:
                    s += img
            return s, errs

        done, window = 0, collections.deque()

        def consume():
            nonlocal done
            fut, n = window.popleft()
            s, errs = fut.result()
            if accumulate:
                np.add(total, s, out=total)
            bad.extend(errs)
            done += n
            if progress:
                progress.update(done)

        with cf.ThreadPoolExecutor(self.workers) as pool:
            try:
                # A bounded window of chunks in flight, consumed in order: results (an int64
                # image each) never pile up, and the first bad file reported is the first in
                # sorted order, whatever the threads' timing.
                for chunk in chunks:
                    window.append((pool.submit(work, chunk), len(chunk)))
                    while len(window) > 4 * self.workers:
                        consume()
                while window:
                    consume()
            except DataError as e:
                for fut, _ in window:
                    fut.cancel()
                if progress:
                    print(file=sys.stderr)
                raise DataError(e.path, f"{e.problem} (skip_bad_images=True drops bad files)"
                                ) from None
            except BaseException:
                for fut, _ in window:
                    fut.cancel()
                if progress:
                    print(file=sys.stderr)
                raise
        if progress:
            progress.update(done, final=True)
        return total, bad

    def _mean_pass(self, train):
        total, bad = self._run_pass("mean of the training images", [f for f, _ in train], True)
        good = len(train) - len(bad)
        if good == 0:
            raise DataError(os.path.join(self.path, "train"), "no readable training images")
        # int64 sums are exact, so the mean does not depend on the order threads finish in.
        return (total / good).astype(np.float32), bad

    def _verify_pass(self, val):
        return self._run_pass(f"checking {os.path.basename(self.val_dir)} images",
                              [f for f, _ in val], False)[1]

    # ---- the cache -----------------------------------------------------------------------------

    def _cache_files(self) -> Tuple[str, str]:
        """(path/.convnet-cache-<size>.npz, $XDG_CACHE_HOME/convnet/<hash of path>-<size>.npz with
        ~/.cache as the default): the first is used where path is writable, the second otherwise.
        Both are read, so a cache shipped inside a read-only dataset is used too."""
        local = os.path.join(self.path, f".convnet-cache-{self.size_px}.npz")
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or
                            os.path.join(os.path.expanduser("~"), ".cache"), "convnet")
        key = hashlib.sha256(self.path.encode()).hexdigest()[:16]
        return local, os.path.join(root, f"{key}-{self.size_px}.npz")

    def _load_cache_file(self, f: str) -> dict:
        try:
            with np.load(f, allow_pickle=False) as z:
                if int(z["version"]) != CACHE_VERSION or list(z["classes"]) != self.label_names:
                    return {}
                mean = z["mean"].astype(np.float32)
                if mean.shape != self.image_shape:
                    return {}
                return {"file": f, "train_fp": str(z["train_fp"]), "val_fp": str(z["val_fp"]),
                        "mean": mean,
                        "train_bad": list(zip(map(str, z["train_bad"]),
                                              map(str, z["train_bad_why"]))),
                        "val_bad": list(zip(map(str, z["val_bad"]), map(str, z["val_bad_why"])))}
        except Exception:   # missing, unreadable or old: recomputed, never trusted
            return {}

    def _read_cache(self) -> dict:
        """What the caches know that still holds: the mean (and the bad training files) if the
        training fingerprint matches, the bad val files if the val fingerprint does."""
        out = {}
        for cache in map(self._load_cache_file, self._cache_files()):
            if "train_fp" not in out and cache.get("train_fp") == self.fingerprint["train"]:
                out.update(train_fp=cache["train_fp"], mean=cache["mean"],
                           train_bad=cache["train_bad"], file=cache["file"])
            if "val_fp" not in out and cache.get("val_fp") == self.fingerprint["test"]:
                out.update(val_fp=cache["val_fp"], val_bad=cache["val_bad"])
        return out

    def _write_cache(self, train_bad, val_bad) -> str:
        local, home = self._cache_files()
        targets = [local, home] if os.access(self.path, os.W_OK) else [home]

        def strings(xs):
            xs = list(xs)
            return np.array(xs, dtype=str) if xs else np.zeros(0, dtype="<U1")

        errors = []
        for target in targets:
            try:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with atomic_write(target, durable=False) as out:
                    np.savez(out, version=CACHE_VERSION, size=self.size_px,
                             classes=np.array(self.label_names, dtype=str), mean=self._mean,
                             train_fp=self.fingerprint["train"], val_fp=self.fingerprint["test"],
                             train_bad=strings(f for f, _ in train_bad),
                             train_bad_why=strings(p for _, p in train_bad),
                             val_bad=strings(f for f, _ in val_bad),
                             val_bad_why=strings(p for _, p in val_bad))
                return target
            except OSError as e:
                errors.append(f"{target}: {e}")
        # The data are still usable, only slower to open next time.
        warnings.warn(f"could not write the mean-image cache ({'; '.join(errors)})", stacklevel=3)
        return ""

    # ---- access --------------------------------------------------------------------------------

    def size(self, split: str) -> int:
        return len(self._files[check_split(split)])

    def labels(self, split: str) -> np.ndarray:
        return self._labels[check_split(split)].copy()

    def files(self, split: str) -> List[Tuple[str, int]]:
        """(path, label) of every image of the split, in index order."""
        return list(self._files[check_split(split)])

    def raw_images(self, split: str, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """(uint8 (N, 3, size, size), int64 labels): images() before the mean subtraction."""
        idx = check_indices(self.path, check_split(split), indices, self.size(split))
        files = self._files[split]
        x = np.empty((len(idx),) + self.image_shape, np.uint8)
        labels = check_labels(self.path, self._labels[split][idx], self.classes)

        def one(j):
            x[j] = load_image(files[idx[j]][0], self.size_px)

        if len(idx) <= 2 or self.workers == 1:
            for j in range(len(idx)):
                one(j)
        else:
            list(self._executor().map(one, range(len(idx))))   # list(): re-raises any error
        return x, labels

    def _executor(self) -> cf.ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(self.workers, thread_name_prefix="convnet-img")
            return self._pool

    def images(self, split: str, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        raw, labels = self.raw_images(split, indices)
        x = raw.astype(np.float32)
        x -= self._mean
        return x, labels

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
