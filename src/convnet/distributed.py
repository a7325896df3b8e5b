"""Data parallelism over MPI processes (mpi4py; pip install ".[mpi]" brings MPICH too).

Every rank holds the same net and takes its own contiguous shard of each global batch; after
backward, the gradients of the parameters that train are summed over the ranks with one
MPI_Allreduce and divided by the number of ranks, so every rank applies the same update: the
gradient of the mean loss over the whole global batch, which is what one process computes on it.
N ranks with shards of B images therefore follow one process with batches of N*B, up to the
order of the float sums (float32 rounding; a float64 net agrees to ~1e-12).

This is the first piece of multi-process training: DataParallel.train_step for the Python API.
Dropout layers draw their masks per shard (element indices restart at each rank's shard), so
nets with dropout train correctly but not identically to the one-process run."""

from typing import Tuple

import numpy as np


class DistributedError(RuntimeError):
    """MPI is missing or the ranks disagree; the message says what to do."""


def mpi():
    """mpi4py's MPI module, or DistributedError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise DistributedError('data parallelism needs mpi4py and an MPI library: pip install '
                               '"convnet[mpi]" (mpi4py and the MPICH wheel)') from None
    return MPI


class DataParallel:
    """Trains `net` on this rank's shards of global batches, in step with the other ranks of
    `comm` (default: MPI.COMM_WORLD). Every rank must build the same net (the same config and
    seed): the constructor checks that their weights agree."""

    def __init__(self, net, comm=None):
        MPI = mpi()
        self.net, self.comm = net, comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._mpi = MPI
        digest = np.array([float(np.sum(v, dtype=np.float64)) for v in net.params.values()])
        first = self.comm.bcast(digest, root=0)
        mismatch = self.comm.allreduce(int(not np.array_equal(first, digest)), op=MPI.SUM)
        if mismatch:
            raise DistributedError(f"{mismatch} rank(s) start from other weights than rank 0: "
                                   "build the same config with the same seed on every rank")

    def shard(self, x, labels) -> Tuple[np.ndarray, np.ndarray]:
        """This rank's part of a global batch: images [rank*B, (rank+1)*B) of N*B."""
        n = len(x)
        if n % self.size:
            raise ValueError(f"DataParallel: a global batch of {n} images does not split "
                             f"evenly over {self.size} ranks")
        b = n // self.size
        part = slice(self.rank * b, (self.rank + 1) * b)
        return x[part], np.asarray(labels)[part]

    def combine_gradients(self, net) -> None:
        """Sums the trained parameters' gradients over the ranks (one Allreduce of one buffer)
        and divides by the number of ranks."""
        grads = net.trained_gradients()
        flat = np.concatenate([g.ravel() for g in grads.values()]) if grads else \
            np.zeros(0, net.dtype)
        self.comm.Allreduce(self._mpi.IN_PLACE, flat, op=self._mpi.SUM)
        flat /= self.size
        out, at = {}, 0
        for name, g in grads.items():
            out[name] = flat[at:at + g.size].reshape(g.shape)
            at += g.size
        net.set_gradients(out)

    def train_step(self, x, labels, *, sharded: bool = False) -> dict:
        """One step on a global batch (each rank passes the whole batch and takes its shard), or
        with sharded=True on this rank's shard. Returns the metrics over the global batch."""
        if not sharded:
            x, labels = self.shard(x, labels)
        local = self.net.train_step(x, labels, combine_gradients=self.combine_gradients)
        return self.mean_metrics(local, len(x))

    def mean_metrics(self, metrics: dict, count: int) -> dict:
        """Each metric averaged over the ranks, weighted by their shard sizes."""
        keys = [(layer, k) for layer in sorted(metrics) for k in sorted(metrics[layer])]
        sums = np.array([metrics[l][k] * count for l, k in keys] + [count], np.float64)
        self.comm.Allreduce(self._mpi.IN_PLACE, sums, op=self._mpi.SUM)
        out: dict = {}
        for (layer, k), total in zip(keys, sums[:-1]):
            out.setdefault(layer, {})[k] = float(total / sums[-1])
        return out

