"""Writing files so that a reader never sees half of one: checkpoints, cached means and PCAs,
converted batches and fetched datasets all go through atomic_write."""

from __future__ import annotations

import contextlib
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
