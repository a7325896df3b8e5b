"""Writing files so that a reader never sees half of one: checkpoints, cached means and PCAs,
converted batches and fetched datasets all go through atomic_write; checkpoints, rewritten at every
test of a run, through atomic_overwrite."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_write(path, *, durable: bool = True) -> Iterator[BinaryIO]:
    """Yields a binary file to write `path`'s new contents to. The file is a temporary one in the
    same folder (unique per process and thread); when the block ends normally it replaces `path`
    in one step (flushed to disk first when `durable`), and when the block raises it is removed
    and `path` is left as it was. The folder must exist."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def spare_paths(path) -> tuple:
    """The hidden files atomic_overwrite keeps beside `path`: the spare, and the name the replaced
    file has for a moment before it becomes the next spare."""
    path = os.fspath(path)
    spare = os.path.join(os.path.dirname(os.path.abspath(path)),
                         f".{os.path.basename(path)}.spare")
    return spare, spare + ".old"


def remove_spare(path) -> None:
    """Deletes what atomic_overwrite kept beside `path` (at the end of a run: it is a full copy)."""
    for name in spare_paths(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


@contextlib.contextmanager
def atomic_overwrite(path) -> Iterator[BinaryIO]:
    """atomic_write for a file saved again and again: the new contents go, in place, into the file
    the save before last wrote, kept as a hidden spare beside `path` (remove_spare deletes it),
    then replace `path` in one step, flushed to disk first; the replaced file becomes the next
    spare. Writing over pages the kernel still holds is several times faster than writing a new
    file where freed memory goes back to a hypervisor, as on cloud VMs (AlexNet's 488 MB
    checkpoint: 0.5 s instead of 1.8 s on the VM of docs/performance.md). Saves to one
    folder take turns (a lock on the folder), so two writers cannot share a spare."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    spare, old = spare_paths(path)
    folder_fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder_fd, fcntl.LOCK_EX)
        except OSError:  # a file system without locks (some network mounts): save unlocked
            pass
        with contextlib.suppress(FileNotFoundError):
            os.unlink(old)  # left by a save that stopped halfway
        with open(os.open(spare, os.O_RDWR | os.O_CREAT, 0o600), "r+b") as f:
            yield f
            f.truncate()   # the end of the new contents; the old ones may have been longer
            f.flush()
            os.fsync(f.fileno())
        kept = os.path.exists(path)
        if kept:
            try:
                os.link(path, old)  # the replaced file lives on under `old`, pages and all
            except OSError:         # a file system without hard links: it is dropped instead
                kept = False
        os.replace(spare, path)
        if kept:
            os.replace(old, spare)
    finally:
        os.close(folder_fd)  # releases the lock
