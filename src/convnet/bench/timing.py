"""Timing: a warm-up call, then repeats until both a minimum count and a minimum total time are
reached; the median is reported (robust to the odd descheduling on a shared machine)."""

import statistics
import time


def median_seconds(fn, min_runs=3, min_total=0.5, max_runs=200):
    fn()  # warm-up: first-touch page faults, allocator caches, BLAS thread start
    times = []
    start = time.perf_counter()
    while len(times) < min_runs or (time.perf_counter() - start < min_total
                                     and len(times) < max_runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
