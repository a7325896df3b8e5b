"""Checkpoints: one file per save holding the config text, every parameter and momentum, and the
trainer's state (counters, metric history, learning-rate scale), with a format version and a
SHA-256 checksum of the arrays. Written to a temporary file in the same folder, flushed to disk,
then renamed over the target, so a crash leaves either the old file or the new one, never half of
one."""

import hashlib
import json
import os
from typing import Dict

import numpy as np

from .files import atomic_write

FORMAT = "convnet-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable convnet checkpoint; the message names the file."""


def _checksum(arrays: Dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.reshape(-1).view(np.uint8))  # the array's bytes, without copying them
    return h.hexdigest()


def save(path, meta: dict, arrays: Dict[str, np.ndarray]) -> None:
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    header = dict(meta, format=FORMAT, version=VERSION, checksum=_checksum(arrays))
    with atomic_write(path) as f:
        np.savez(f, __meta__=np.array(json.dumps(header)), **arrays)


def _open(path):
    """The npz archive at path, for reading; CheckpointError when it is not one."""
    try:
        z = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise CheckpointError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"{path}: a folder, not a checkpoint file") from None
    except Exception as e:  # zipfile/npy errors: truncated or not an npz at all
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from None
    if not hasattr(z, "files"):   # a single .npy array
        raise CheckpointError(f"{path}: not a convnet checkpoint")
    return z


def _header(path, z) -> dict:
    """The checked JSON header of an open checkpoint archive."""
    try:
        meta = json.loads(str(z["__meta__"])) if "__meta__" in z.files else {}
    except Exception as e:  # a truncated member
        raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a convnet checkpoint")
    if meta.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta['version']} is newer than this "
                              f"convnet reads ({VERSION}); upgrade convnet")
    return meta


def read_meta(path) -> dict:
    """Only the JSON header (config, counters, history, options), without reading or verifying
    the arrays: what resuming and showing a run need besides the weights."""
    path = os.fspath(path)
    with _open(path) as z:
        return _header(path, z)


def load(path):
    """Returns (meta, arrays); raises CheckpointError for a missing, truncated, foreign, newer or
    corrupted file."""
    path = os.fspath(path)
    with _open(path) as z:
        meta = _header(path, z)
        try:
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
        except Exception as e:  # a truncated member
            raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from None
    if _checksum(arrays) != meta.get("checksum"):
        raise CheckpointError(f"{path}: checksum mismatch: the file is corrupted")
    return meta, arrays
