"""The background loader: the paper computes its augmentation "on the CPU while the GPU trains on
the previous batch". A Loader walks an epoch's index order batch by batch and prepares upcoming
batches in worker threads (numpy copies and Pillow's JPEG decoding release the GIL), so the
consumer finds each batch ready.

Batch b is always dataset.batch(split, order[b*B:(b+1)*B], key=key(b)), whichever thread computes
it and whenever: output order and content are the same for any worker count, and starting at batch
k reproduces the tail of a full run (exact resume). The dataset's batch() must therefore be a pure
function of its arguments and safe to call from several threads at once.
"""

import collections
import inspect
import math
import operator
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional, Tuple

import numpy as np


def batch_key(b: int) -> Tuple[int]:
    """The default augmentation key of batch b; a trainer passes lambda b: (epoch, b)."""
    return (b,)


def shard_bounds(n: int, rank: int, size: int) -> Tuple[int, int]:
    """Rank's contiguous part [lo, hi) of n images among `size` ranks: equal parts when size
    divides n, otherwise parts that differ by at most one image (some empty when n < size)."""
    return rank * n // size, (rank + 1) * n // size


class Loader:
    """Iterates (batch_number, images, labels) for batches start_batch .. end of `order`.

    workers: threads computing batches (0: each batch computed in the consumer's thread when it
    is asked for). prefetch: batches computed or in progress ahead of the consumer (at least
    `workers`, so that every worker has something to do). key: batch number -> augmentation key
    passed to dataset.batch, or None to call dataset.batch(split, indices) without one (datasets
    without augmentation).

    wait_time accumulates the seconds the consumer spent blocked waiting for a batch: near zero
    when loading keeps up with training, close to the total when training waits on the data.

    A worker's exception (a DataError for a corrupt file, say) is raised in the consumer when it
    reaches that batch, with the batch number in a note; the loader is closed by then. Use it as
    a context manager (or call close()) so that stopping early also stops the threads.

    shard=(rank, size): a data-parallel rank's loader, which yields only its part of every batch
    (shard_bounds; part(b) says which), augmented with the whole batch's draws."""

    def __init__(self, dataset, split: str, order, batch_size: int, start_batch: int = 0,
                 key: Optional[Callable[[int], tuple]] = batch_key, workers: int = 2,
                 prefetch: int = 4, reuse_buffers: bool = False, pinned: bool = False,
                 shard: Optional[Tuple[int, int]] = None):
        order = np.asarray(order)
        if order.ndim != 1 or not (order.size == 0 or np.issubdtype(order.dtype, np.integer)):
            raise ValueError(f"loader: order must be a 1-D array of indices, got "
                             f"{order.dtype} {order.shape}")
        batch_size, start_batch = operator.index(batch_size), operator.index(start_batch)
        workers, prefetch = operator.index(workers), operator.index(prefetch)
        if batch_size < 1:
            raise ValueError(f"loader: batch_size must be >= 1, got {batch_size}")
        if workers < 0 or prefetch < 1:
            raise ValueError(f"loader: needs workers >= 0 and prefetch >= 1, got workers="
                             f"{workers}, prefetch={prefetch}")
        self.batches = math.ceil(order.size / batch_size)
        if not 0 <= start_batch <= self.batches:
            raise ValueError(f"loader: start_batch {start_batch} is outside the {self.batches} "
                             f"batches of {order.size} indices")
        self.dataset, self.split, self.order, self.batch_size = dataset, split, order, batch_size
        self.key, self.workers = key, workers
        if shard is not None and not 0 <= shard[0] < shard[1]:
            raise ValueError(f"loader: shard (rank, size) must have 0 <= rank < size, got {shard}")
        self.shard = shard
        self.prefetch = max(prefetch, workers)
        self.wait_time = 0.0
        self._next = start_batch        # the batch the consumer gets next
        self._submitted = start_batch   # the next batch to hand to a worker
        self._pending = collections.deque()   # futures of batches _next .. _submitted-1
        self._closed = False
        self._ring = self._make_ring(reuse_buffers, pinned)
        self._pool = (ThreadPoolExecutor(workers, thread_name_prefix="convnet-loader")
                      if workers else None)
        self._fill()

    def _make_ring(self, reuse: bool, pinned: bool):
        """Image buffers reused round-robin: batch b is written into slot b % len(ring). A slot
        comes round again prefetch + 2 batches later, which a worker can only start once the
        consumer has asked for batch b + 2: so a batch's images stay valid until then (the
        trainer copies each batch into the net before asking for the next). pinned: page-locked
        memory, which a GPU net copies from by DMA."""
        supports = "out" in inspect.signature(self.dataset.batch).parameters
        if not (reuse or pinned) or not supports or not hasattr(self.dataset, "shape"):
            return None
        shape = (self.batch_size,) + tuple(self.dataset.shape)
        from .. import _core
        if pinned and hasattr(_core, "pinned_array") and _core.cuda_device_count() > 0:
            return [_core.pinned_array(list(shape)) for _ in range(self.prefetch + 2)]
        return [np.empty(shape, np.float32) for _ in range(self.prefetch + 2)]

    def __len__(self):
        """Batches still to come."""
        return 0 if self._closed else self.batches - self._next

    def part(self, b) -> Tuple[int, int, int]:
        """(lo, hi, n): batch b has n images, of which this loader yields lo .. hi - 1 (all of
        them without a shard)."""
        n = len(self.order[b * self.batch_size:(b + 1) * self.batch_size])
        return (0, n, n) if self.shard is None else shard_bounds(n, *self.shard) + (n,)

    def _load(self, b):
        indices = self.order[b * self.batch_size:(b + 1) * self.batch_size]
        extra = {} if self.key is None else {"key": tuple(self.key(b))}
        if self.shard is not None:
            lo, hi, n = self.part(b)
            if lo == hi:   # a short last batch with fewer images than ranks
                return (np.empty((0,) + tuple(self.dataset.shape), np.float32),
                        np.empty(0, np.int64))
            indices = indices[lo:hi]
            if self.key is not None:
                extra["part"] = (lo, n)
        if self._ring is not None:
            extra["out"] = self._ring[b % len(self._ring)][:len(indices)]
        return self.dataset.batch(self.split, indices, **extra)

    def _fill(self):
        if self._pool is None:
            return
        while (self._submitted < self.batches and len(self._pending) < self.prefetch
               and not self._closed):
            self._pending.append(self._pool.submit(self._load, self._submitted))
            self._submitted += 1

    def __iter__(self):
        return self

    def __next__(self):
        if self._closed or self._next >= self.batches:
            self.close()
            raise StopIteration
        b = self._next
        start = time.perf_counter()
        try:
            if self._pool is None:
                images, labels = self._load(b)
            else:
                future = self._pending.popleft()
                self._fill()   # keep the workers busy while this batch is finished and used
                images, labels = future.result()
        except BaseException as e:
            self.close()
            if isinstance(e, Exception) and hasattr(e, "add_note"):   # Python >= 3.11
                first = b * self.batch_size
                last = min(first + self.batch_size, self.order.size) - 1
                e.add_note(f"while loading batch {b} of the {self.split!r} split (positions "
                           f"{first}..{last} of the order)")
            raise
        finally:
            self.wait_time += time.perf_counter() - start
        self._next = b + 1
        return b, images, labels

    def close(self) -> None:
        """Cancel the batches not started and join the threads (waiting at most for the batches
        in progress, one per worker). Idempotent; the loader yields nothing afterwards."""
        if self._closed:
            return
        self._closed = True
        for future in self._pending:
            future.cancel()
        self._pending.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        # A loader dropped without close(): stop queued work without blocking the collector.
        pool = getattr(self, "_pool", None)
        if pool is not None and not getattr(self, "_closed", True):
            self._closed = True
            pool.shutdown(wait=False, cancel_futures=True)
