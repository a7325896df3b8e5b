"""Opening what convnet-show is pointed at: a run folder (its checkpoint.npz) or a checkpoint
file, with the trainer's history from the checkpoint's meta and the net loaded lazily (the cost
curves need no net)."""

import os
from dataclasses import dataclass, field
from typing import List, Optional

from .. import checkpoint

CHECKPOINT_NAME = "checkpoint.npz"


class ShowError(ValueError):
    """Something convnet-show cannot draw; the message says what and how to fix it."""


@dataclass
class Run:
    checkpoint_path: str
    folder: str                    # where the pictures go unless --out says otherwise
    meta: dict
    arrays: dict
    _net: Optional[object] = field(default=None, repr=False)

    @property
    def history(self) -> List[dict]:
        """The trainer's test entries (step, epoch, lr_scale, time, train/..., test/...)."""
        return list((self.meta.get("trainer") or {}).get("history") or [])

    @property
    def data_options(self) -> dict:
        """How convnet-train made the run's data (its data options, the synthetic set's sizes
        and seed included); empty for a Net.save file."""
        return dict((self.meta.get("options") or {}).get("data") or {})

    @property
    def net(self):
        if self._net is None:
            from ..net import Net   # the C++ core: only for filters and predictions
            self._net = Net.load(self.checkpoint_path)
        return self._net


def checkpoint_path(path) -> str:
    """The checkpoint file a run folder or a file path names."""
    path = os.fspath(path)
    if os.path.isdir(path):
        inside = os.path.join(path, CHECKPOINT_NAME)
        if os.path.isfile(inside):
            return inside
        others = sorted(f for f in os.listdir(path) if f.endswith(".npz"))
        hint = (f"; it holds {', '.join(others)}: give one of them as the file" if others else
                "; is it a run folder of convnet-train?")
        raise ShowError(f"{path}: no {CHECKPOINT_NAME} in this folder{hint}")
    if not os.path.exists(path):
        raise ShowError(f"{path}: no such run folder or checkpoint file")
    return path


def open_run(path) -> Run:
    """The run at `path` (a run folder or a checkpoint file); ShowError when it cannot be read."""
    file = checkpoint_path(path)
    try:
        meta, arrays = checkpoint.load(file)
    except checkpoint.CheckpointError as e:
        raise ShowError(str(e)) from None
    if "net" not in meta:
        raise ShowError(f"{file}: the checkpoint holds no net")
    folder = os.path.dirname(os.path.abspath(file))
    return Run(checkpoint_path=file, folder=folder, meta=meta, arrays=arrays)
