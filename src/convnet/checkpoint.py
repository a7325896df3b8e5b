"""Checkpoints: one file per save holding the config text, every parameter and momentum, and the
trainer's state (counters, metric history, learning-rate scale), with a format version and the
CRC-32 of every array. The file is an .npz archive (np.load reads it) written to another file in
the same folder (files.atomic_overwrite), flushed to disk, then renamed over the target, so a
crash leaves either the old file or the new one, never half of one.

The checksum is the zip format's own: zipfile computes each member's CRC-32 as it writes and
checks it whenever a member is read to its end, so saving hashes the bytes once, as they pass, and
the JSON header records every member's CRC-32 so that a file re-archived with other arrays is
caught too. (Version 1 files carried a SHA-256 over all arrays instead: a second pass over
hundreds of MB per save; they are still read and verified.)"""

import hashlib
import json
import os
import zipfile
from typing import Dict

import numpy as np

from .files import atomic_overwrite, remove_spare

FORMAT = "convnet-checkpoint"
VERSION = 2
META = "__meta__"


class CheckpointError(ValueError):
    """A file that is not a readable convnet checkpoint; the message names the file."""


def _sha256(arrays: Dict[str, np.ndarray]) -> str:
    """Version 1's checksum, kept to verify version 1 files."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.reshape(-1).view(np.uint8))  # the array's bytes, without copying them
    return h.hexdigest()


def _write_member(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> int:
    """Writes one array as `name`.npy, straight from its memory (np.savez copies every 16 MB chunk
    first); returns its CRC-32."""
    a = np.asarray(array, order="C")  # (np.ascontiguousarray would make a 0-d array 1-d)
    with archive.open(name + ".npy", "w", force_zip64=True) as member:
        np.lib.format.write_array_header_2_0(member, np.lib.format.header_data_from_array_1_0(a))
        member.write(memoryview(a.reshape(-1).view(np.uint8)))
    return archive.getinfo(name + ".npy").CRC


def save(path, meta: dict, arrays: Dict[str, np.ndarray], *, again: bool = False) -> None:
    """Writes the checkpoint atomically. The arrays are only read, during the call: views of live
    parameters are fine. again=True: more saves to `path` follow (a training run), so the file
    this one replaces is kept as a hidden spare for the next to write into (files.atomic_overwrite);
    end with files.remove_spare(path)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with atomic_overwrite(path) as f:
        with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            crcs = {name: _write_member(archive, name, a) for name, a in arrays.items()}
            header = dict(meta, format=FORMAT, version=VERSION, crc32=crcs)
            _write_member(archive, META, np.array(json.dumps(header)))
    if not again:
        remove_spare(path)


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
        meta = json.loads(str(z[META])) if META in z.files else {}
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
        version = meta.get("version", 1)
        names = [k for k in z.files if k != META]
        if version >= 2:
            recorded = meta.get("crc32", {})
            stored = {k: z.zip.getinfo(k + ".npy").CRC for k in names}
            if stored != recorded:
                raise CheckpointError(f"{path}: checksum mismatch: the arrays are not the ones "
                                      "the checkpoint was saved with")
        try:
            arrays = {k: z[k] for k in names}  # zipfile checks each member's CRC-32 as it reads
        except zipfile.BadZipFile as e:
            raise CheckpointError(f"{path}: checksum mismatch: the file is corrupted ({e})") \
                from None
        except Exception as e:  # a truncated member
            raise CheckpointError(f"{path}: not a readable checkpoint ({e})") from None
    if version < 2 and _sha256(arrays) != meta.get("checksum"):
        raise CheckpointError(f"{path}: checksum mismatch: the file is corrupted")
    return meta, arrays
