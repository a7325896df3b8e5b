"""Run folders: where convnet-train keeps a run. Unless told otherwise, each run gets a folder
`runs/<layers-file stem>-<YYYYmmdd-HHMMSS>/` holding

- checkpoint.npz: the training checkpoint (convnet.checkpoint, written atomically at every test);
- log.txt: the lines convnet-train printed (not the progress line), appended to on resume;
- history.csv: one row per test (step, epoch, lr_scale, time and every train/test metric),
  rewritten atomically from the checkpoint's history at every save, so it is always complete.

A checkpoint saved elsewhere (--save-path FILE) has its log and history beside it, named after
it: runs/alexnet.npz, runs/alexnet.log.txt, runs/alexnet.history.csv."""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from typing import List, Optional

from .files import atomic_write

CHECKPOINT = "checkpoint.npz"
LOG = "log.txt"
HISTORY = "history.csv"
RUNS_DIR_ENV = "CONVNET_RUNS_DIR"   # the default parent of new run folders (else ./runs)


def default_runs_dir() -> str:
    return os.environ.get(RUNS_DIR_ENV) or "runs"


def new_run_folder(parent, layers_path, start: float) -> str:
    """A folder name not yet taken: <parent>/<layers stem>-<start time>, with -2, -3, ... added
    for runs started in the same second."""
    stem = os.path.splitext(os.path.basename(os.fspath(layers_path or "")))[0] or "run"
    base = os.path.join(os.fspath(parent),
                        f"{stem}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(start))}")
    path, k = base, 2
    while os.path.exists(path):
        path, k = f"{base}-{k}", k + 1
    return path


def is_run_folder(path) -> bool:
    return os.path.isdir(path) and os.path.isfile(os.path.join(path, CHECKPOINT))


def checkpoint_path(path) -> str:
    """-f and --save-path take a run folder or a checkpoint file: a folder (existing, or named
    with a trailing slash) means the checkpoint.npz inside it."""
    path = os.fspath(path)
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        return os.path.join(path, CHECKPOINT)
    return path


def companion(checkpoint, name: str) -> str:
    """The log or history file that goes with a checkpoint: LOG/HISTORY in a run folder,
    '<stem>.log.txt' / '<stem>.history.csv' beside any other checkpoint file."""
    folder, base = os.path.split(os.fspath(checkpoint))
    if base == CHECKPOINT:
        return os.path.join(folder, name)
    return os.path.join(folder, f"{os.path.splitext(base)[0]}.{name}")


def folder_of(checkpoint) -> Optional[str]:
    """The run folder a checkpoint is the checkpoint of, or None for a file saved elsewhere."""
    folder, base = os.path.split(os.fspath(checkpoint))
    return (folder or ".") if base == CHECKPOINT else None


def where(checkpoint) -> str:
    """How messages name a saved run: its folder (with a trailing slash) or its file."""
    folder = folder_of(checkpoint)
    return os.path.join(folder, "") if folder else os.fspath(checkpoint)


# ---- the history as CSV ------------------------------------------------------------------------

def write_history(path, history: List[dict]) -> None:
    """One row per entry, the columns every key in order of first appearance (a metric missing
    from a row is left empty). Written atomically, without the fsync (it is rebuilt from the
    checkpoint at the next save)."""
    columns: List[str] = []
    for entry in history:
        columns += [k for k in entry if k not in columns]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, restval="", lineterminator="\n")
    writer.writeheader()
    for entry in history:
        writer.writerow({k: repr(v) if isinstance(v, float) else v for k, v in entry.items()})
    with atomic_write(path, durable=False) as f:
        f.write(text.getvalue().encode())


def read_history(path) -> List[dict]:
    """write_history's rows back as dicts of numbers (empty cells left out)."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    out = []
    for row in rows:
        entry = {}
        for k, v in row.items():
            if v == "":
                continue
            number = float(v)
            entry[k] = int(number) if k == "step" and math.isfinite(number) else number
        out.append(entry)
    return out


# ---- the log -----------------------------------------------------------------------------------

class RunLog:
    """Prints convnet-train's lines and appends them to the run's log file, once it has one."""

    def __init__(self, out=None, err=None):
        self._out, self._err = out, err
        self.file = None

    def open(self, path) -> None:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.file = open(path, "a", encoding="utf-8")

    def __call__(self, line: str, error: bool = False) -> None:
        stream = (self._err or sys.stderr) if error else (self._out or sys.stdout)
        print(line, file=stream, flush=True)
        if self.file is not None:
            self.file.write(line + "\n")
            self.file.flush()

    def error(self, line: str) -> None:
        self(line, error=True)

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
