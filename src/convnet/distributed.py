"""Data parallelism over MPI processes (mpi4py; pip install ".[mpi]" brings MPICH too).

Every rank holds the same net and takes its own contiguous shard of each global batch; the
gradients of the parameters that train are summed over the ranks with MPI_Allreduce, in buckets
overlapped with the backward pass (convnet.allreduce), each rank's weighted by its share of the
batch, so every rank applies the same update: the gradient of the mean loss over the whole
global batch, which is what one process computes on it. Dropout draws the global batch's masks
(each shard at its offset in the batch) and augmentation the global batch's crops, so N ranks
with shards of B images follow one process with batches of N*B, up to the order of the float
sums (float32 rounding; a float64 net agrees to ~1e-12).

Ranks whose nets are on one GPU each (a GPU of its own) sum with NCCL instead, on the GPUs
(where every rank has NCCL: pip install "convnet[nccl]"); MPI then only starts them, checks
them and carries the metrics. DataParallel is the engine of `mpiexec -n N convnet-train ...`
(convnet.trainer) and of the Python API. Collectives wait with a deadline (timeout): a rank
that hangs or has died stops the others with an error instead of a hang."""

import hashlib
import json
import os
import shutil
import socket
import sys
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from . import _core
from .allreduce import BUCKET_BYTES, GradientAllReduce, NcclGradientAllReduce
from .data.loader import shard_bounds
from .replicas import use_wheel_nccl


class DistributedError(RuntimeError):
    """MPI is missing, the ranks disagree or one stopped answering; the message says what."""


# The environment variables in which MPI launchers tell a process its rank and the number of
# ranks: MPICH's Hydra (and Slurm's PMI), Open MPI, MVAPICH.
LAUNCHER_VARIABLES = (("PMI_RANK", "PMI_SIZE"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),
                      ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"))

# Seconds a collective may wait for the other ranks before this rank gives up on them.
DEFAULT_TIMEOUT = 300.0
# Seconds a rank polls a collective without pause before it naps between polls.
SPIN = 0.05
# The communication thread's nap between polls of a gradient bucket's sum.
NAP = 5e-5


def launched_world() -> Tuple[int, int]:
    """(rank, number of ranks) as an MPI launcher set them in the environment; (0, 1) for a
    process not started by one. Reads no MPI library, so a plain run never loads one."""
    for rank, size in LAUNCHER_VARIABLES:
        if os.environ.get(size, "").isdigit() and os.environ.get(rank, "").isdigit():
            return int(os.environ[rank]), int(os.environ[size])
    return 0, 1


def launcher() -> Optional[str]:
    """The mpiexec to start ranks with: the one beside this Python (pip's MPICH wheel installs
    it into the environment's bin/, matching the MPI mpi4py loads), else the first on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return here if os.path.exists(here) else shutil.which("mpiexec")


def mpi():
    """mpi4py's MPI module, or DistributedError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise DistributedError('data parallelism needs mpi4py and an MPI library: pip install '
                               '"convnet[mpi]" (mpi4py and the MPICH wheel)') from None
    return MPI


def weights_digest(net) -> str:
    """A hash of every parameter's and momentum's bytes: equal on two ranks exactly when they
    hold the same state."""
    h = hashlib.blake2b(digest_size=16)
    for name, value in net.state_arrays(views=True).items():
        h.update(name.encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


class DataParallel:
    """Trains `net` on this rank's shards of global batches, in step with the other ranks of
    `comm` (default: MPI.COMM_WORLD). Every rank must build the same net (the same config and
    seed, or the same checkpoint): the constructor checks that their weights agree, and that
    the `facts` every rank states (name -> value: config, options, data) are rank 0's.

    nccl: sum the gradients with NCCL on the GPUs (True), with MPI through host memory (False),
    or NCCL where every rank can (None: each rank's net on one GPU, NCCL found); `summed_by`
    says which ("NCCL" or "MPI")."""

    def __init__(self, net, comm=None, timeout: float = DEFAULT_TIMEOUT,
                 facts: Optional[Dict[str, object]] = None, overlap: bool = True,
                 bucket_bytes: int = BUCKET_BYTES, nccl: Optional[bool] = None):
        MPI = mpi()
        self.net, self.comm = net, comm if comm is not None else MPI.COMM_WORLD
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = float(timeout)
        self._mpi = MPI
        self.agree({**(facts or {}), "the weights and momenta": weights_digest(net)})
        communicator = self._nccl_communicator(nccl)
        if communicator is not None:
            self.summed_by = "NCCL"
            self.gradients = NcclGradientAllReduce(
                net, self.size, communicator, self.timeout, self._no_answer, self._failed,
                overlap=overlap, bucket_bytes=bucket_bytes)
            return
        self.summed_by = "MPI"
        # Overlap needs a second thread in MPI calls (never two at once).
        overlap = overlap and MPI.Query_thread() >= MPI.THREAD_SERIALIZED
        if overlap:
            buckets_comm = self.comm.Dup()   # the communication thread's own

            def reduce(piece, what):
                # Polled with naps: a blocking call would spin on the core backward runs on.
                request = buckets_comm.Iallreduce(MPI.IN_PLACE, piece, op=MPI.SUM)
                while not request.Test():
                    time.sleep(NAP)
        else:
            reduce = self.allreduce
        self.gradients = GradientAllReduce(net, self.size, reduce, self.timeout,
                                           self._no_answer, overlap=overlap,
                                           bucket_bytes=bucket_bytes)

    @property
    def comm_seconds(self) -> float:
        """Seconds spent summing gradients over the ranks (overlapped with backward or not)."""
        return self.gradients.comm_seconds

    @property
    def exposed_seconds(self) -> float:
        """Seconds the steps waited for the gradient sums after backward: the communication
        that compute did not hide."""
        return self.gradients.exposed_seconds

    def close(self) -> None:
        """Stops the communication thread (the net stays usable on its own)."""
        self.gradients.close()

    def _nccl_communicator(self, wanted: Optional[bool]):
        """NCCL's communicator of the ranks' GPUs (every rank decides alike), or None."""
        why_not = "" if wanted is False else nccl_unusable(self.net)
        gpu = f"{self.net.devices[0]} on {socket.gethostname()}"
        every = self.allgather([wanted, why_not, gpu], "the choice of NCCL")
        if any(w != wanted for w, _, _ in every):
            raise DistributedError("the ranks ask for different gradient sums: " + ", ".join(
                f"rank {r}: {_SUMS[w]}" for r, (w, _, _) in enumerate(every)))
        if wanted is False:
            return None
        reasons = [f"rank {r}: {why}" for r, (_, why, _) in enumerate(every) if why]
        if not reasons:   # NCCL wants a GPU of its own for each rank
            first = {}
            for r, (_, _, where) in enumerate(every):
                if where in first:
                    reasons.append(f"ranks {first[where]} and {r} share {where}")
                first.setdefault(where, r)
        if reasons:
            if wanted:
                raise DistributedError("NCCL cannot sum the gradients: " + "; ".join(reasons))
            return None
        unique = _core.nccl_unique_id().hex() if self.rank == 0 else ""
        unique = self.allgather(unique, "the NCCL id")[0]
        device = int(self.net.devices[0].partition(":")[2])
        try:
            return _core.NcclRanks(bytes.fromhex(unique), self.size, self.rank, device)
        except RuntimeError as e:
            raise self._failed("NCCL's start", e) from None

    def _failed(self, what: str, error: Exception) -> DistributedError:
        return DistributedError(f"rank {self.rank} of {self.size}: NCCL failed in {what} "
                                f"({error})")

    # ---- collectives with a deadline -----------------------------------------------------------

    def _wait(self, request, what: str) -> None:
        """Waits for a nonblocking collective, giving up after `timeout` seconds. MPICH moves a
        collective on only while a rank calls into it, so the wait polls without pause for
        SPIN seconds (a blocking MPI call spins too), then naps between polls, so that a rank
        waiting long for a slow one (rank 0 writing a checkpoint) leaves its core alone."""
        start = time.monotonic()
        deadline = start + self.timeout
        while not self._test(request, what):
            now = time.monotonic()
            if now > deadline:
                raise self._no_answer(what)
            if now - start > SPIN:
                time.sleep(1e-3)

    def _test(self, request, what: str) -> bool:
        """Whether the collective is done; an error MPI reports (a peer that died, with a
        library that notices) becomes a DistributedError naming this rank and the collective."""
        try:
            return request.Test()
        except self._mpi.Exception as e:
            raise DistributedError(f"rank {self.rank} of {self.size}: MPI failed in {what} "
                                   f"({e}): another rank has probably died") from None

    def _no_answer(self, what: str) -> DistributedError:
        return DistributedError(
            f"rank {self.rank} of {self.size}: no answer from the other ranks for "
            f"{self.timeout:g} s in {what}: another rank hangs or has died (the rank table at "
            "the start of the log gives their pids and hosts)")

    def allreduce(self, buffer: np.ndarray, what: str) -> np.ndarray:
        """buffer summed over the ranks, in place."""
        self._wait(self.comm.Iallreduce(self._mpi.IN_PLACE, buffer, op=self._mpi.SUM), what)
        return buffer

    def allgather(self, value, what: str) -> list:
        """Every rank's value (small, JSON-encodable), in rank order."""
        blob = np.frombuffer(json.dumps(value, sort_keys=True, default=str).encode(), np.uint8)
        sizes = np.zeros(self.size, np.int64)
        sizes[self.rank] = blob.size
        self.allreduce(sizes, what)
        data = np.zeros(int(sizes.sum()), np.uint8)
        start = int(sizes[:self.rank].sum())
        data[start:start + blob.size] = blob
        self.allreduce(data, what)   # each rank fills its own slice: the sum is the gather
        bounds = np.concatenate([[0], np.cumsum(sizes)])
        return [json.loads(data[a:b].tobytes()) for a, b in zip(bounds[:-1], bounds[1:])]

    def agree(self, facts: Dict[str, object], what: str = "the ranks' start") -> None:
        """Checks that every rank states the same facts as rank 0 (config, checkpoint, options,
        data); raises DistributedError on every rank, naming the ranks and what differs."""
        every = self.allgather(facts, what)
        lines = []
        for rank, theirs in enumerate(every[1:], 1):
            for key in every[0]:
                if theirs.get(key) != every[0][key]:
                    lines.append(f"rank {rank} differs from rank 0 in {key}: "
                                 f"{_short(theirs.get(key))} against {_short(every[0][key])}")
        if lines:
            raise DistributedError("the ranks do not start from the same run (every rank must "
                                   "read the same config, checkpoint and data):\n  " +
                                   "\n  ".join(lines))

    def where(self) -> List[str]:
        """'rank R: pid P on HOST, DEVICES' for every rank (the launcher names a dead rank by
        pid)."""
        here = f"pid {os.getpid()} on {socket.gethostname()}, {','.join(self.net.devices)}"
        return [f"rank {r}: {w}" for r, w in enumerate(self.allgather(here, "the rank table"))]

    # ---- training ------------------------------------------------------------------------------

    def bounds(self, n: int) -> Tuple[int, int]:
        """This rank's part [lo, hi) of a global batch of n images."""
        return shard_bounds(n, self.rank, self.size)

    def shard(self, x, labels) -> Tuple[np.ndarray, np.ndarray]:
        """This rank's part of a global batch (x, labels)."""
        lo, hi = self.bounds(len(x))
        return x[lo:hi], np.asarray(labels)[lo:hi]

    def train_shard(self, x, labels, first: int, total: int) -> dict:
        """One step on this rank's shard x (images first .. first + len(x) of a global batch of
        `total`); returns the metrics over the global batch. The shards' gradients are summed
        weighted by their share of the batch (times the number of ranks: 1 for equal shards),
        so the update follows the global batch's mean gradient. An empty shard (a last batch
        with fewer images than ranks) still takes part in the sums and the update."""
        self.gradients.start(len(x) / total * self.size)
        if len(x) == 0:
            zeros = {name: np.zeros_like(g) for name, g in self.net.trained_gradients().items()}
            self.net.apply_gradients(zeros, combine_gradients=self.gradients.finish)
            local = {}
        else:
            ready = self.gradients.params_ready if self.gradients.overlap else None
            local = self.net.train_step(x, labels, sample_offset=first, params_ready=ready,
                                        combine_gradients=self.gradients.finish)
        return self.mean_metrics(local, len(x))

    def train_step(self, x, labels, *, sharded: bool = False) -> dict:
        """One step on a global batch (each rank passes the whole batch and takes its shard), or
        with sharded=True on this rank's equal shard. Returns the metrics over the global
        batch."""
        if sharded:
            return self.train_shard(x, labels, self.rank * len(x), len(x) * self.size)
        return self.train_shard(*self.shard(x, labels), self.bounds(len(x))[0], len(x))

    def sum_totals(self, totals: Dict[Tuple[str, str], float], count: int):
        """Per-image sums of the net's metrics ((layer, name) -> sum) and the image count, added
        over the ranks; a rank without images passes none."""
        keys = self.net.metric_names()
        sums = np.array([totals.get(k, 0.0) for k in keys] + [count], np.float64)
        self.allreduce(sums, "the metrics' sums")
        return dict(zip(keys, sums[:-1])), int(sums[-1])

    def mean_metrics(self, metrics: dict, count: int) -> dict:
        """Each metric averaged over the ranks, weighted by their shard sizes."""
        totals = {(layer, k): v * count for layer in metrics for k, v in metrics[layer].items()}
        sums, total = self.sum_totals(totals, count)
        out: dict = {}
        for (layer, k), value in sums.items():
            out.setdefault(layer, {})[k] = float(value / max(total, 1))
        return out


_SUMS = {None: "NCCL where it can", True: "NCCL", False: "MPI"}


def nccl_unusable(net) -> str:
    """Why NCCL cannot sum this rank's gradients ("" when it can): the net must be one graph on
    one GPU, and NCCL's library must load."""
    if net.replicas != 1 or len(set(net.devices)) != 1 or \
            not net.devices[0].startswith("cuda"):
        return f"the net is on {','.join(net.devices)}, not on one GPU"
    use_wheel_nccl()
    return _core.nccl_status()


def _short(value, limit: int = 120) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."
