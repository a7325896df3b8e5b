"""python -m convnet.bench --parallel: data parallelism over MPI ranks on this machine.

For each rank count N of --ranks, the bench starts `mpiexec -n N` on this module (each rank with
its share of the cores as threads) and measures, with convnet.distributed.DataParallel:
- the all-reduce (float32 sums, DataParallel.allreduce) at gradient sizes, as one message and in
  the pieces the gradient sums use: ms and bus bandwidth (2 (N-1)/N bytes / time, the data each
  rank sends and receives in a ring; comparable across rank counts and with the copy bandwidth);
- the training step of the shipped nets at their usual global batch, each rank on its shard,
  with the gradients summed in buckets overlapped with backward and, in turn, after backward:
  ms per step, the time spent summing, the part of it the step waited for (not hidden by
  compute; all of it without overlap), images/s, and the speed-up over one rank.
Ranks and threads share this machine's cores, so the step's scaling shows what ranks cost
against threads; across machines or GPUs the all-reduce is what grows.

With --device cuda each rank trains on a GPU of its own (its rank on the host, modulo the GPUs)
and the sums are NCCL's, in place on the GPUs, where every rank has a GPU of its own and NCCL is
installed; otherwise MPI's through host memory. The tables say which."""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import List

import numpy as np

from ..allreduce import PIECE_BYTES
from .timing import measure_copy

# Gradient-sized buffers: MNIST's net is 3 MB of weights, the CIFAR-10 nets 0.3-0.4 MB, AlexNet
# 244 MB.
SIZES_MB = [0.25, 4.0, 32.0, 256.0]
NETS = [("mnist", 128), ("cifar10-80sec", 128), ("cifar10-18pct", 128), ("alexnet", 32)]


def run(args) -> int:
    """The parent: one mpiexec per rank count, then the tables."""
    from ..distributed import launcher
    mpiexec = launcher()
    if mpiexec is None:
        raise SystemExit('convnet.bench --parallel needs mpiexec and mpi4py: pip install '
                         '"convnet[mpi]"')
    if not any(args.filter in stem for stem, _ in NETS):
        raise SystemExit(f"convnet.bench --parallel: no net matches --filter {args.filter!r} "
                         f"(the nets: {', '.join(stem for stem, _ in NETS)})")
    cores = os.cpu_count() or 1
    ranks = [int(r) for r in (args.ranks or f"1,{min(cores, 2)}").split(",")]
    if any(r < 1 for r in ranks):
        raise SystemExit("convnet.bench --parallel: --ranks takes positive counts, e.g. 1,2")
    copy = measure_copy(cores, 8 << 20 if args.quick else 256 << 20)
    results = []
    with tempfile.TemporaryDirectory(prefix="convnet-bench-parallel-") as folder:
        for n in ranks:
            threads = max(1, cores // n)
            out = os.path.join(folder, f"ranks{n}.json")
            cmd = [mpiexec, "-n", str(n), sys.executable, "-m", "convnet.bench.parallel",
                   "--out", out, "--threads", str(threads), "--filter", args.filter or "",
                   "--device", args.device]
            cmd += ["--quick"] if args.quick else []
            print(f"{n} rank(s) x {threads} thread(s) ...", flush=True)
            env = dict(os.environ, OMP_NUM_THREADS=str(threads))
            done = subprocess.run(cmd, env=env)
            if done.returncode != 0:
                raise SystemExit(f"convnet.bench --parallel: the run on {n} ranks failed "
                                 f"(exit code {done.returncode})")
            with open(out) as f:
                results.append(json.load(f))
    print_tables(results, copy)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"copy_gbps": copy, "runs": results}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


def print_tables(results, copy) -> None:
    print(f"\nall-reduce of float32 sums (MPI_Iallreduce of host buffers, or NCCL's of GPU "
          f"tensors), median: as one message and in the {PIECE_BYTES >> 20} MB pieces MPI's "
          f"gradient sums use; bus bandwidth = 2 (N-1)/N bytes / time; this machine's copy "
          f"bandwidth {copy:.1f} GB/s")
    print(f"{'MB':>7} {'ranks':>5} {'sum':>5} {'one ms':>8} {'busbw':>7} {'pieces ms':>9} "
          f"{'busbw':>7}")
    for r in results:
        for a in r["allreduce"] if r["ranks"] > 1 else []:
            pieces = (f"{a['pieces_ms']:9.3f} {a['pieces_busbw']:7.2f}" if "pieces_ms" in a
                      else f"{'-':>9} {'-':>7}")
            print(f"{a['mb']:7.2f} {r['ranks']:5d} {r.get('summed_by', 'MPI'):>5} "
                  f"{a['whole_ms']:8.3f} {a['whole_busbw']:7.2f} {pieces}")
    print("\ntraining step at the global batch, each rank on its shard (median over rounds); "
          "comm: summing the gradients, exposed: the part the step waited for")
    print(f"{'net':15} {'batch':>5} {'ranks':>5} {'threads':>7} {'sum':>5} {'overlap':>7} "
          f"{'ms/step':>8} "
          f"{'comm ms':>8} {'exposed':>8} {'exp. %':>6} {'images/s':>9} {'vs 1 rank':>9}")
    one = {(s["net"], s["overlap"]): s for r in results if r["ranks"] == 1 for s in r["steps"]}
    for r in results:
        for s in r["steps"]:
            base = one.get((s["net"], s["overlap"]))
            speedup = f"{base['ms'] / s['ms']:9.2f}" if base else f"{'-':>9}"
            print(f"{s['net']:15} {s['batch']:5d} {r['ranks']:5d} {r['threads']:7d} "
                  f"{r.get('summed_by', 'MPI'):>5} {'yes' if s['overlap'] else 'no':>7} {s['ms']:8.1f} {s['comm_ms']:8.2f} "
                  f"{s['exposed_ms']:8.2f} {100 * s['exposed_ms'] / s['ms']:6.1f} "
                  f"{s['batch'] / s['ms'] * 1e3:9.0f} {speedup}")


# ---- the worker: one rank of one run --------------------------------------------------------

def _max_over_ranks(dp, seconds: float) -> float:
    """The slowest rank's time: a collective step ends when the last rank is done."""
    return float(dp.comm.allreduce(seconds, op=dp._mpi.MAX))


def _time_allreduce(dp, mb: float, repeats: int) -> dict:
    """The sum of a buffer as one message and in the pieces MPI's gradient sums use, in turn;
    with NCCL, of a GPU tensor as one call (NCCL pipelines it itself)."""
    buffer = np.ones(int(mb * (1 << 20)) // 4, np.float32)
    piece = PIECE_BYTES // 4

    def whole():
        dp.allreduce(buffer, "the bench")

    def pieces():
        for at in range(0, buffer.size, piece):
            dp.allreduce(buffer[at:at + piece], "the bench")
    ways = {"whole": whole, "pieces": pieces}
    if dp.summed_by == "NCCL":
        import convnet
        communicator = dp.gradients.communicator
        tensor = convnet.Tensor.from_numpy(buffer, f"cuda:{communicator.device}")
        ways = {"whole": lambda: communicator.sum([tensor])}
    times = {name: [] for name in ways}
    for way in ways.values():
        way()   # first touch and connection set-up
    for _ in range(repeats):
        for name, way in ways.items():
            dp.comm.Barrier()
            start = time.perf_counter()
            way()
            times[name].append(_max_over_ranks(dp, time.perf_counter() - start))
    out = {"mb": buffer.nbytes / (1 << 20)}
    for name in ways:
        seconds = statistics.median(times[name])
        out[f"{name}_ms"] = 1e3 * seconds
        out[f"{name}_busbw"] = 2 * (dp.size - 1) / dp.size * buffer.nbytes / seconds / 1e9
    return out


def _time_steps(modes, stem, batch, rounds, steps) -> List[dict]:
    """modes: DataParallel objects over one net (with and without overlap), timed in turn."""
    from .train import _batch
    x, labels = _batch(modes[0].net, batch, np.random.default_rng(0))   # the same everywhere
    for dp in modes:
        dp.train_step(x, labels)   # first touch and workspaces outside the timing
    figures = {id(dp): ([], [], []) for dp in modes}
    for _ in range(rounds):
        for dp in modes:
            times, comm, exposed = figures[id(dp)]
            dp.comm.Barrier()
            before = dp.comm_seconds, dp.exposed_seconds
            start = time.perf_counter()
            for _ in range(steps):
                dp.train_step(x, labels)
            times.append(_max_over_ranks(dp, (time.perf_counter() - start) / steps))
            comm.append(_max_over_ranks(dp, (dp.comm_seconds - before[0]) / steps))
            exposed.append(_max_over_ranks(dp, (dp.exposed_seconds - before[1]) / steps))
    return [{"net": stem, "batch": batch, "overlap": dp.gradients.overlap,
             **{k: 1e3 * statistics.median(v) for k, v in
                zip(("ms", "comm_ms", "exposed_ms"), figures[id(dp)])}} for dp in modes]


def worker(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m convnet.bench.parallel")
    p.add_argument("--out", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--filter", default="")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = p.parse_args(argv)
    import convnet
    from ..distributed import DataParallel, mpi
    from .train import layer_defs
    convnet.set_num_threads(args.threads)
    comm = mpi().COMM_WORLD
    root = layer_defs()
    sizes = SIZES_MB[:2] if args.quick else SIZES_MB
    nets = [(s, 2 if args.quick else b) for s, b in NETS if args.filter in s]
    rounds, steps = (1, 1) if args.quick else (3, 3)
    result = {"ranks": comm.Get_size(), "threads": args.threads, "allreduce": [], "steps": [],
              "device": args.device}
    nccl = None
    if args.device == "cuda":
        gpus = convnet.cuda_device_count()
        if gpus == 0:
            raise SystemExit("convnet.bench --parallel --device cuda: no GPU here")
        host = comm.Split_type(mpi().COMM_TYPE_SHARED)
        device = f"cuda:{host.Get_rank() % gpus}"
        nccl = None if host.Get_size() <= gpus else False   # NCCL wants a GPU per rank
    for stem, batch in nets:
        net = convnet.Net.from_cfg(root / f"{stem}.cfg", root / f"{stem}-params.cfg", seed=0)
        if args.device == "cuda":
            net.to(device)
        modes = [DataParallel(net, comm, overlap=True, nccl=nccl),
                 DataParallel(net, comm, overlap=False, nccl=nccl)]
        result["summed_by"] = modes[0].summed_by
        if not result["allreduce"]:
            result["allreduce"] = [_time_allreduce(modes[1], mb, 3 if args.quick else 7)
                                   for mb in sizes]
        result["steps"] += _time_steps(modes, stem, batch, rounds, steps)
        for dp in modes:
            dp.close()
    if comm.Get_rank() == 0:
        with open(args.out, "w") as f:
            json.dump(result, f)
    return 0


if __name__ == "__main__":
    sys.exit(worker())
