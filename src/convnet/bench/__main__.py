"""python -m convnet.bench: time every op at the AlexNet (batch 32) and cuda-convnet CIFAR-10
(batch 128) layer shapes on the CPU.

Convolutions and fully connected layers are reported in GFLOP/s and as a fraction of this machine's
SGEMM rate (measured through convnet.ops.fc_forward on 2048^3, i.e. the same OpenBLAS, before and
after the cases; the higher counts); memory-bound ops in GB/s and as a fraction of the measured copy
bandwidth. With PyTorch installed, its time for the same op is a column. The CPU time other
processes took during the run is reported too: on a busy machine every figure drops.
"""

import argparse
import datetime
import os
import platform
import sys
import time

import numpy as np

import convnet
import convnet.ops as ops

from . import report, shapes
from .timing import LoadMonitor, measure, measure_copy, median_seconds, reused_freed_memory


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _blas_info():
    """convnet's own OpenBLAS (the one every GEMM here runs on) and the one numpy was built with."""
    try:
        import scipy_openblas32
        ours = scipy_openblas32.get_openblas_config().strip()
    except Exception as e:  # a config string is nice to have, never a reason to fail
        ours = f"unknown ({type(e).__name__})"
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        theirs = f"{blas.get('name', '?')} {blas.get('version', '?')}"
    except Exception:
        theirs = "unknown"
    return ours, theirs


def measure_sgemm(n=2048):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n)).astype(np.float32)
    b = rng.standard_normal((n, n)).astype(np.float32)
    return 2.0 * n ** 3 / median_seconds(lambda: ops.fc_forward(a, b), min_runs=5) / 1e9


def _torch(threads):
    """PyTorch with the same intra-op thread count, or None where it is not installed."""
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch


def set_fraction(r, sgemm, copy):
    """'of limit': GFLOP/s over the SGEMM rate, or GB/s over the copy bandwidth."""
    if r["gflops"] is not None:
        r["fraction_of_limit"] = r["gflops"] / sgemm
    elif r["gbps"] is not None:
        r["fraction_of_limit"] = r["gbps"] / copy


def measure_references(threads, quick):
    """SGEMM (GFLOP/s) and copy (GB/s) rates, and the cores other processes used meanwhile."""
    load = LoadMonitor()
    sgemm = measure_sgemm(256 if quick else 2048)
    copy = measure_copy(threads, 8 << 20 if quick else 256 << 20)
    return sgemm, copy, load.other_cores()


def run_case(case, sgemm, copy, torch, min_time):
    load = LoadMonitor()
    timing = measure(case.run, min_total=min_time)
    other = load.other_cores()
    seconds = timing.median
    r = {"net": case.net, "layer": case.layer, "op": case.op, "shape": case.shape,
         "ms": 1e3 * seconds, "min_ms": 1e3 * timing.min, "runs": timing.runs,
         "flops": case.flops or None, "bytes": case.bytes or None,
         "gflops": None, "gbps": None, "fraction_of_limit": None,
         "torch_ms": None, "vs_torch": None,
         # cores other processes kept busy while ours was timed: above BUSY the row is suspect
         "other_load_cores": other}
    if case.flops:
        r["gflops"] = case.flops / seconds / 1e9
    elif case.bytes:
        r["gbps"] = case.bytes / seconds / 1e9
    set_fraction(r, sgemm, copy)
    if torch is not None and case.torch is not None:
        with torch.no_grad() if "bwd" not in case.op else _null():
            t = median_seconds(case.torch(), min_total=min_time)
        r["torch_ms"] = 1e3 * t
        r["vs_torch"] = t / seconds  # > 1: ours is faster
    return r


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def summarize(rows, sgemm):
    """The issue's figure: AlexNet conv2-conv5 forward+backward, flop-weighted (total flops over
    total time, so the slow layers weigh by the time they take)."""
    sel = [r for r in rows if r["net"] == "alexnet" and r["op"] == "conv fwd+bwd"
           and r["layer"] in ("conv2", "conv3", "conv4", "conv5")]
    if not sel:
        return {}, []
    flops = sum(r["flops"] for r in sel)
    seconds = sum(r["ms"] / 1e3 for r in sel)
    rate = flops / seconds / 1e9
    summary = {"alexnet_conv2_5_fwd_bwd_layers": [r["layer"] for r in sel],
               "alexnet_conv2_5_fwd_bwd_gflop": flops / 1e9,
               "alexnet_conv2_5_fwd_bwd_ms": 1e3 * seconds,
               "alexnet_conv2_5_fwd_bwd_gflops": rate,
               "alexnet_conv2_5_fwd_bwd_fraction_of_sgemm": rate / sgemm}
    line = (f"AlexNet conv2-conv5 forward+backward (batch 32): {rate:.1f} GFLOP/s = "
            f"{100 * rate / sgemm:.0f}% of SGEMM ({sgemm:.1f} GFLOP/s)")
    return summary, [line]


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m convnet.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="where to run the ops (default: cpu)")
    p.add_argument("--json", metavar="FILE", help="write every figure to FILE as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write a markdown table to FILE")
    p.add_argument("--filter", metavar="SUBSTR", default="",
                   help="only cases whose 'net layer op' contains SUBSTR "
                        "(e.g. conv, 'alexnet conv3')")
    p.add_argument("--quick", action="store_true", help="tiny shapes and few repeats (smoke test)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for OpenMP and OpenBLAS (default: all cores)")
    p.add_argument("--train", action="store_true",
                   help="time the whole training step of each shipped net instead of the ops "
                        "(with --device, --filter on the net's name, --quick)")
    p.add_argument("--layers", action="store_true",
                   help="with --train: also each layer's share of the step (Net.profile)")
    p.add_argument("--trainer", action="store_true",
                   help="with --train: also convnet-train's loop (loader, tests, checkpoints) "
                        "against the step alone, in images/s")
    p.add_argument("--data", nargs="?", const="", metavar="PATH",
                   help="time the background data loader (decoding, crops, flips, colour noise) "
                        "on the dataset at PATH instead of the ops; without PATH on a small "
                        "synthetic JPEG folder")
    p.add_argument("--data-provider", metavar="NAME",
                   help="the provider type for --data PATH (default: detected from the files)")
    p.add_argument("--data-workers", default="1,2", metavar="LIST",
                   help="loader worker counts for --data, comma-separated (default: 1,2)")
    p.add_argument("--parallel", action="store_true",
                   help="data parallelism over MPI ranks instead of the ops: all-reduce "
                        "bandwidth, and the training step's time, communication share and "
                        "images/s on 1 to N ranks (with --ranks, --filter on the net's name, "
                        "--quick, --json); needs pip install \"convnet[mpi]\"")
    p.add_argument("--ranks", metavar="LIST", help="rank counts for --parallel, "
                   "comma-separated (default: 1 and 2 where there are two cores)")
    args = p.parse_args(argv)
    if args.parallel:
        from . import parallel
        return parallel.run(args)
    if args.data is not None:
        from . import data
        return data.main(args, sys.argv[1:] if argv is None else list(argv))

    if args.train:
        from . import train
        return train.run(args)
    if args.device == "cuda":
        from . import gpu
        return gpu.run(args)
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    # main() also runs in-process (tests): the thread count is restored on the way out.
    saved_threads = convnet.get_num_threads()
    try:
        if args.threads is not None:
            convnet.set_num_threads(args.threads)
        return _run(args)
    finally:
        convnet.set_num_threads(saved_threads)


def _run(args):
    with reused_freed_memory() as reused:
        return _run_cases(args, reused)


def _run_cases(args, reused):
    t_start = time.perf_counter()
    load = LoadMonitor()
    threads = convnet.get_num_threads()
    min_time = 0.05 if args.quick else 0.5
    rng = np.random.default_rng(0)
    cases = shapes.quick(rng) if args.quick else shapes.alexnet(rng) + shapes.cifar10(rng)
    cases = [c for c in cases if args.filter in f"{c.net} {c.layer} {c.op}"]
    if not cases:
        sys.exit(f"convnet.bench: no case matches --filter {args.filter!r}")

    torch = _torch(threads)
    blas, numpy_blas = _blas_info()
    meta = {"machine": f"{_cpu_model()}, {os.cpu_count()} cores", "threads": threads,
            "date": datetime.date.today().isoformat(), "version": convnet.__version__,
            "python": platform.python_version(), "numpy": np.__version__,
            "blas": blas, "numpy_blas": numpy_blas, "device": "cpu",
            "torch": getattr(torch, "__version__", None), "quick": args.quick,
            "filter": args.filter}
    print(f"convnet {meta['version']} benchmark, {meta['date']}", flush=True)
    print(f"machine: {meta['machine']}; {threads} threads", flush=True)
    print(f"BLAS: {blas}; numpy {meta['numpy']} (built with {numpy_blas}); "
          f"PyTorch: {meta['torch'] or 'not installed'}", flush=True)
    meta["reused_memory"] = reused
    print("outputs: " + ("malloc keeps freed memory, so each call's fresh output reuses the last "
                         "one's pages, as a training step reuses its buffers" if reused else
                         "mapped fresh by each call (no glibc mallopt): page faults included"),
          flush=True)
    print("measuring reference rates ...", flush=True)
    meta["sgemm_n"] = 256 if args.quick else 2048
    sgemm, copy, ref_load = measure_references(threads, args.quick)
    meta.update(sgemm_gflops_start=sgemm, copy_gbps_start=copy, reference_other_load_cores=ref_load)
    print(f"SGEMM {sgemm:.1f} GFLOP/s (fc_forward {meta['sgemm_n']}^3, median); "
          f"copy {copy:.1f} GB/s", flush=True)
    print(f"{len(cases)} cases; 'of limit' is the fraction of SGEMM (GFLOP/s) or of copy "
          "bandwidth (GB/s); 'vs torch' > 1 means convnet is faster", flush=True)
    print(report.header_line(), flush=True)

    rows = []
    for case in cases:
        r = run_case(case, sgemm, copy, torch, min_time)
        rows.append(r)
        print(report.row_line(r), flush=True)

    # The references again, after the cases. Another process, or a slow vCPU, only ever lowers a
    # measured rate, so the higher of the two measurements is this machine's rate: the fractions
    # use it (recomputed in the JSON and markdown; the table is printed again where it moved by
    # more than 5%, which the copy reference does between allocations on some VMs).
    sgemm_end, copy_end, ref_load_end = measure_references(threads, args.quick)
    meta.update(sgemm_gflops_end=sgemm_end, copy_gbps_end=copy_end,
                sgemm_gflops=max(sgemm, sgemm_end), copy_gbps=max(copy, copy_end))
    meta["reference_other_load_cores"] = max(ref_load or 0, ref_load_end or 0)
    meta["other_load_cores"] = load.other_cores()
    meta["elapsed_s"] = time.perf_counter() - t_start
    for r in rows:
        set_fraction(r, meta["sgemm_gflops"], meta["copy_gbps"])
    if meta["sgemm_gflops"] > 1.05 * sgemm or meta["copy_gbps"] > 1.05 * copy:
        print(f"\nthe references measured higher after the cases: the table again, 'of limit' "
              f"against SGEMM {meta['sgemm_gflops']:.1f} GFLOP/s and copy "
              f"{meta['copy_gbps']:.1f} GB/s", flush=True)
        print(report.header_line())
        for r in rows:
            print(report.row_line(r))
    summary, lines = summarize(rows, meta["sgemm_gflops"])
    lines += report.notes(meta, rows)
    for line in lines:
        print(line, flush=True)
    if args.json:
        report.write_json(args.json, meta, rows, summary)
        print(f"wrote {args.json}")
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(report.markdown(meta, rows, lines))
        print(f"wrote {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
