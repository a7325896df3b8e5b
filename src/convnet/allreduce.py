"""The gradient all-reduce of data parallelism (convnet.distributed), in buckets overlapped with
the backward pass.

The parameters that train are grouped, in backward order (last layer first), into buckets of at
least `bucket_bytes`; a layer's parameters always share one. During backward the net calls
params_ready(layer) as soon as a layer's gradients are final; they are copied (times the rank's
weight) into their bucket, and a full bucket goes to a communication thread, which sums it over
the ranks while backward goes on below. After backward the step waits for the last buckets (the
communication that compute did not hide) and writes the sums back, divided by the number of
ranks. Each bucket is summed in pieces of at most `piece_bytes`: MPICH's shared-memory path
moves 4 MB messages 4-5x faster than one 256 MB message (AlexNet's gradient: 105 ms as one,
28 ms in 4 MB pieces, on the 2-core machine of docs/performance.md).

Without overlap (overlap=False) the same buckets and pieces are summed after backward, in the
training thread; the sums are the same bits either way.

On GPU ranks with NCCL (NcclGradientAllReduce) the buckets are the gradient tensors themselves:
a ready layer's gradients are scaled by the rank's share on the GPU, and the communication
thread has NCCL sum the bucket in place on a stream of its own, after the backward work that
wrote it; nothing goes through host memory. That thread runs with or without overlap (without,
it gets every bucket after backward), so that the training thread's deadline can abort a sum
that waits for a rank that died."""

import queue
import threading
import time
from typing import Callable, List, Optional

import numpy as np

BUCKET_BYTES = 4 << 20
PIECE_BYTES = 4 << 20


class Bucket:
    def __init__(self, layers: List[int], params, dtype, host: bool = True):
        self.layers = layers               # layer indices, in backward order
        self.params = params               # (layer, name, offset, size) in the buffer
        size = sum(size for *_, size in params)
        self.buffer = np.zeros(size, dtype) if host else None   # the host path's staging
        self.waiting = set(layers)         # layers whose gradients are not in yet


class GradientAllReduce:
    """Sums the trained gradients of `net` over `ranks` ranks. reduce(buffer, what) sums one
    piece in place, on the communication thread with overlap (a blocking call on a communicator
    of its own) or on the training thread without; `timeout` bounds the training thread's wait
    for the last buckets, after which it raises no_answer(what)."""

    host = True        # buckets staged in host memory (False: summed where the gradients are)
    threaded = False   # a communication thread even without overlap

    def __init__(self, net, ranks: int, reduce: Optional[Callable], timeout: float,
                 no_answer: Callable[[str], Exception], overlap: bool = True,
                 bucket_bytes: int = BUCKET_BYTES, piece_bytes: int = PIECE_BYTES):
        self.net, self.ranks, self.reduce = net, ranks, reduce
        self.timeout, self.no_answer = timeout, no_answer
        self.piece = max(1, piece_bytes // np.dtype(net.dtype).itemsize)
        self.bucket_bytes = bucket_bytes
        self._replan()
        self.overlap = overlap
        self.comm_seconds = 0.0      # time spent summing (on the communication thread)
        self.exposed_seconds = 0.0   # time the step waited for the sums after backward
        self._scale = 1.0
        self._todo: "queue.Queue[Optional[Bucket]]" = queue.Queue()
        self._done = threading.Semaphore(0)
        self._failure: Optional[BaseException] = None
        self._thread = None
        if overlap or self.threaded:
            self._thread = threading.Thread(target=self._communicate, daemon=True,
                                            name="convnet-allreduce")
            self._thread.start()

    def _replan(self) -> None:
        """Buckets for the parameters that train now (freezing or thawing layers changes them)."""
        trained = self.net.trained_parameters()
        self._trained = [name for _, name, _ in trained]
        self.buckets = self._plan(trained, self.net.dtype, self.bucket_bytes, self.host)
        self.bucket_of = {layer: b for b in self.buckets for layer in b.layers}

    @staticmethod
    def _plan(trained, dtype, bucket_bytes, host=True) -> List[Bucket]:
        by_layer = {}
        for layer, name, shape in trained:
            by_layer.setdefault(layer, []).append((name, int(np.prod(shape, dtype=np.int64))))
        itemsize = np.dtype(dtype).itemsize
        buckets, layers, params, size = [], [], [], 0
        for layer in sorted(by_layer, reverse=True):
            layers.append(layer)
            for name, n in by_layer[layer]:
                params.append((layer, name, size, n))
                size += n
            if size * itemsize >= bucket_bytes:
                buckets.append(Bucket(layers, params, dtype, host))
                layers, params, size = [], [], 0
        if layers:
            buckets.append(Bucket(layers, params, dtype, host))
        return buckets

    # ---- one step ------------------------------------------------------------------------------

    def start(self, scale: float) -> None:
        """Before backward: this rank's gradients enter the sums times `scale`."""
        self._scale = scale
        if [name for _, name, _ in self.net.trained_parameters()] != self._trained:
            self._replan()
        for b in self.buckets:
            b.waiting = set(b.layers)

    def params_ready(self, layer: int) -> None:
        """Net.train_step's hook: layer's gradients are final."""
        bucket = self.bucket_of.get(layer)
        if bucket is None or layer not in bucket.waiting:
            return
        self._collect(bucket, layer)
        if not bucket.waiting and self.overlap:
            self._todo.put(bucket)

    def _collect(self, bucket: Bucket, layer: int) -> None:
        for owner, name, offset, size in bucket.params:
            if owner == layer:
                self.net.read_gradient(name, bucket.buffer[offset:offset + size], self._scale)
        bucket.waiting.discard(layer)

    def finish(self, net=None) -> None:
        """After backward (the combine_gradients hook): the buckets backward did not complete
        (layers it did not reach, or an empty shard) are collected now, every sum is awaited,
        and the gradients are replaced by the sums over the number of ranks."""
        late = []
        for b in self.buckets:
            if b.waiting:
                for layer in sorted(b.waiting, reverse=True):
                    self._collect(b, layer)
                late.append(b)
        start = time.perf_counter()
        if self._thread is not None:
            for b in late:
                self._todo.put(b)
            deadline = time.monotonic() + self.timeout
            for _ in self.buckets:
                if not self._done.acquire(timeout=max(0.0, deadline - time.monotonic())):
                    self._abandon()
                    raise self.no_answer(self._what())
            if self._failure is not None:
                raise self._failure
        else:
            for b in self.buckets:
                self._sum(b)
        self.exposed_seconds += time.perf_counter() - start
        for b in self.buckets:
            self._deliver(b)

    def _deliver(self, bucket: Bucket) -> None:
        """The bucket's sums, over the number of ranks, become the gradients."""
        bucket.buffer /= self.ranks
        for _, name, offset, n in bucket.params:
            self.net.write_gradient(name, bucket.buffer[offset:offset + n])

    def _abandon(self) -> None:
        """The deadline passed: sums still running are given up (MPI's cannot be)."""

    def _sum(self, bucket: Bucket) -> None:
        start = time.perf_counter()
        for at in range(0, bucket.buffer.size, self.piece):
            self.reduce(bucket.buffer[at:at + self.piece], self._what())
        self.comm_seconds += time.perf_counter() - start

    def _communicate(self) -> None:
        while True:
            bucket = self._todo.get()
            if bucket is None:
                return
            try:
                self._sum(bucket)
            except BaseException as e:   # handed to the training thread, which raises it
                self._failure = e
            self._done.release()

    def _what(self) -> str:
        return f"the gradient all-reduce of step {self.net.step}"

    def close(self) -> None:
        if self._thread is not None:
            self._todo.put(None)
            self._thread.join(timeout=1.0)
            self._thread = None


class NcclGradientAllReduce(GradientAllReduce):
    """GradientAllReduce for a rank whose net is on one GPU: `communicator` (a
    convnet._core.NcclRanks of every rank) sums the gradient tensors in place; failed(what,
    error) makes the exception an NCCL error becomes."""

    host = False
    threaded = True

    def __init__(self, net, ranks: int, communicator, timeout: float,
                 no_answer: Callable[[str], Exception],
                 failed: Callable[[str, Exception], Exception], overlap: bool = True,
                 bucket_bytes: int = BUCKET_BYTES):
        self.communicator, self.failed = communicator, failed
        super().__init__(net, ranks, None, timeout, no_answer, overlap=overlap,
                         bucket_bytes=bucket_bytes)

    def _replan(self) -> None:
        super()._replan()
        for b in self.buckets:
            b.tensors = [self.net.gradient_tensor(name) for _, name, _, _ in b.params]

    def _collect(self, bucket: Bucket, layer: int) -> None:
        # Scaled by the rank's share of the batch (the host path divides by the ranks after
        # the sum; here the sum is final), then ordered after the backward that wrote them.
        tensors = [t for (owner, *_), t in zip(bucket.params, bucket.tensors) if owner == layer]
        self.communicator.ready(tensors, self._scale / self.ranks)
        bucket.waiting.discard(layer)

    def _sum(self, bucket: Bucket) -> None:
        start = time.perf_counter()
        try:
            self.communicator.sum(bucket.tensors)
        except RuntimeError as e:
            raise self.failed(self._what(), e) from None
        self.comm_seconds += time.perf_counter() - start

    def _deliver(self, bucket: Bucket) -> None:
        pass   # summed in place

    def _abandon(self) -> None:
        self.communicator.abort()
