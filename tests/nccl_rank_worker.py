"""Run by tests/test_nccl_ranks.py, one process per rank (ID NRANKS RANK SCENARIO OUT): joins
the NCCL communicator ID (hex) with GPU RANK % the GPUs it sees (NCCL wants one GPU per rank;
the emulator's processes each have their own) and plays SCENARIO, writing what it saw to OUT/rank<r>.npz or .txt.

sums:     one grouped sum of tensors of several sizes (one past the emulator's
          1 MiB chunk, one of one element), then a sum of tensors scaled by ready() first;
mismatch: each rank sums a tensor of another size (NCCL's invalid usage);
abort:    rank 0 aborts instead of summing; the others' sums must end with an error;
deadline: rank 0's sum waits for a rank that never sums, until another thread aborts it."""

import pathlib
import sys
import threading
import time

import numpy as np

import convnet
from convnet import _core

SIZES = ((300_001, np.float32), (7, np.float32), (1, np.float32))   # GPU tensors are float32


def rank_data(rank):
    rng = np.random.default_rng(100 + rank)
    return [rng.standard_normal(n).astype(dtype) for n, dtype in SIZES]


def device(rank):
    return rank % convnet.cuda_device_count()


def to_gpu(arrays, rank):
    return [convnet.Tensor.from_numpy(a.copy(), f"cuda:{device(rank)}") for a in arrays]


def report(out, rank, text):
    (out / f"rank{rank}.txt").write_text(text)


def main(unique, nranks, rank, scenario, out):
    nranks, rank, out = int(nranks), int(rank), pathlib.Path(out)
    comm = _core.NcclRanks(bytes.fromhex(unique), nranks, rank, device(rank))
    if scenario == "sums":
        first = to_gpu(rank_data(rank), rank)
        comm.sum(first)
        second = to_gpu(rank_data(rank), rank)
        comm.ready(second, 0.5)
        comm.sum(second)
        np.savez(out / f"rank{rank}.npz", *[t.to("cpu").numpy() for t in first + second])
    elif scenario == "mismatch":
        try:
            comm.sum(to_gpu([np.ones(5 + rank, np.float32)], rank))
            report(out, rank, "no error")
        except RuntimeError as e:
            report(out, rank, str(e))
    elif scenario == "abort":
        if rank == 0:
            comm.abort()
            report(out, rank, "aborted")
            return
        try:
            comm.sum(to_gpu([np.ones(5, np.float32)], rank))
            report(out, rank, "no error")
        except RuntimeError as e:
            report(out, rank, str(e))
    elif scenario == "deadline":
        if rank != 0:
            time.sleep(3)   # never sums
            return
        seen = []

        def summing():
            try:
                comm.sum(to_gpu([np.ones(5, np.float32)], rank))
                seen.append("no error")
            except RuntimeError as e:
                seen.append(str(e))
        worker = threading.Thread(target=summing)
        start = time.monotonic()
        worker.start()
        time.sleep(1.0)
        comm.abort()
        worker.join(timeout=20)
        report(out, rank, f"{seen} after {time.monotonic() - start:.1f} s")


if __name__ == "__main__":
    main(*sys.argv[1:])
