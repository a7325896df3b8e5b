"""Timing: a warm-up call, then repeats until both a minimum count and a minimum total time are
reached; the median is reported (robust to the odd descheduling on a shared machine), with the
fastest run and the run count beside it so a noisy figure shows itself.

Also a CPU-load monitor: on a shared machine another process's work steals cores from the threads
being timed, and every figure (the SGEMM reference included) drops without any message. The monitor
reads /proc/stat and this process's CPU time, so the report can say how many cores other processes
kept busy during the run."""

import contextlib
import ctypes
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Timing:
    median: float     # seconds
    min: float        # seconds
    runs: int


def measure(fn, min_runs=3, min_total=0.5, max_runs=200):
    fn()  # warm-up: first-touch page faults, allocator caches, BLAS thread start
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < min_total
                                     and len(times) < max_runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), min(times), len(times))


def median_seconds(fn, min_runs=3, min_total=0.5, max_runs=200):
    return measure(fn, min_runs, min_total, max_runs).median


@contextlib.contextmanager
def reused_freed_memory():
    """Inside the block glibc's malloc serves every block from its heap and keeps what is freed
    (no mmap of large blocks, no trimming), so that an op called again gets back the output
    buffer it just freed, as a training step reuses its buffers, for ours and PyTorch's ops
    alike. Otherwise each large output (AlexNet's 37 MB activations) is mapped fresh and faulted
    in page by page on every call; on a virtual machine that returns freed pages to its host the
    faults can cost more than the op (relu1: 4.9 ms instead of 1.6 in one run). Yields False
    where the C library has no mallopt (not glibc): figures then include those faults. glibc's
    defaults are set back on the way out (the benchmark also runs inside the tests)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        yield False
        return
    m_trim_threshold, m_mmap_max = -1, -4   # <malloc.h>
    reused = bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, 2**31 - 1))
    try:
        yield reused
    finally:
        mallopt(m_mmap_max, 65536)            # glibc's defaults
        mallopt(m_trim_threshold, 128 * 1024)


def _busy_seconds():
    """CPU seconds all CPUs have spent busy since boot (None where /proc/stat is missing).
    Fields: user nice system idle iowait irq softirq steal ...; busy = all but idle and iowait
    (steal counts: a hypervisor that takes a vCPU away slows us exactly like another process)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds():
    t = os.times()
    return t.user + t.system


class LoadMonitor:
    """other_cores(): the average number of cores other processes kept busy since start()."""

    def __init__(self):
        self.start()

    def start(self):
        self._t0, self._busy0, self._own0 = time.perf_counter(), _busy_seconds(), _own_seconds()

    def other_cores(self):
        busy = _busy_seconds()
        if busy is None or self._busy0 is None:
            return None
        wall = time.perf_counter() - self._t0
        other = (busy - self._busy0) - (_own_seconds() - self._own0)
        return max(0.0, other / wall) if wall > 0 else None


def measure_copy(threads, nbytes=256 << 20):
    """Memory bandwidth as a threaded copy (read + write) of an array far larger than the caches:
    each of `threads` threads copies its own slice (numpy releases the GIL while copying)."""
    from concurrent.futures import ThreadPoolExecutor
    src = np.ones(nbytes // 4, np.float32)
    dst = np.empty_like(src)
    bounds = np.linspace(0, src.size, threads + 1).astype(int)
    slices = [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]
    with ThreadPoolExecutor(threads) as pool:
        def copy():
            list(pool.map(lambda s: np.copyto(dst[s], src[s]), slices))
        return 2.0 * nbytes / median_seconds(copy, min_runs=5) / 1e9
