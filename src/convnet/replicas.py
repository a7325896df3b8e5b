"""cuda-convnet2's replicated layers in one process: `gpu=0,1,2,3` on a layer runs it as four
replicas, one per listed device, each on a quarter of every batch (data parallelism); a layer
with fewer replicas than its input (the "one weird trick" hybrid: data-parallel convolutions
feeding model-parallel fully connected layers, each on one device) runs once per input replica
(cuda-convnet2's passes), on that replica's part of the batch.

How it runs here: a net whose largest replica count is R is R copies of the layer graph
(replica graphs), graph r holding replica r % R_L of each layer L (R_L its replica count) on
that replica's device, so graph r carries part r of the batch through every layer, and a layer
of one replica sits on its one device in every graph. Each graph runs forward and backward on
its part; the gradients of every parameter are then summed over the graphs, weighted by their
parts of the batch (in C++: csrc/graph/replicas.cpp, on each device, then across devices with
NCCL on GPUs, through host memory otherwise; the emulated devices have an emulated NCCL), and
every graph applies the same update. The weights stay identical copies, and the step is the
single-device step on the whole batch (cuda-convnet2's updatePeriod equal to the passes: one
update per batch).

cuda-convnet2's rules, checked: a layer's inputs have equal replica counts, every consumer of a
layer has the same count, a layer's count divides its inputs' counts, and a layer's replicas are
on distinct devices."""

import os
from typing import Dict, List, Sequence, Tuple

import numpy as np

from . import _core
from .config import ConfigError


def _error(spec, message: str) -> ConfigError:
    where = spec.where
    return ConfigError(message, file=where.file if where else None,
                       line=where.line if where else None, section=spec.name, key="gpu")


def replica_count(specs: Sequence, where: Dict[str, Tuple[int, ...]]) -> int:
    """The largest replica count of the net's layers (1 without gpu= lists), after checking
    cuda-convnet2's rules for replicated layers."""
    kinds = {s.name: s.type for s in specs}
    consumers: Dict[str, int] = {}
    for s in specs:
        if s.type == "data":
            continue
        count = len(where[s.name])
        if len(set(where[s.name])) != count:
            raise _error(s, f"gpu={','.join(map(str, where[s.name]))}: a layer's replicas must be "
                            "on distinct devices")
        inputs = [name for name in s.inputs if kinds[name] != "data"]
        counts = {len(where[name]) for name in inputs}
        if len(counts) > 1:
            raise _error(s, "its inputs have different replica counts (" + ", ".join(
                f"{name}: {len(where[name])}" for name in inputs) + "); cuda-convnet2 needs "
                "equal counts")
        for name in inputs:
            if len(where[name]) % count:
                raise _error(s, f"{count} replicas do not divide the {len(where[name])} of its "
                                f"input {name}: a layer's replica count must divide its inputs'")
            if consumers.setdefault(name, count) != count:
                raise _error(s, f"the consumers of {name} have different replica counts "
                                f"({consumers[name]} and {count}); cuda-convnet2 needs equal "
                                "counts")
    return max((len(where[s.name]) for s in specs if s.type != "data"), default=1)


def replica_placement(specs: Sequence, where: Dict[str, Tuple[int, ...]],
                      replicas: int) -> List[List[int]]:
    """The logical device of every layer in each replica graph r: replica r % R_L of layer L
    (data layers feed every device; they are placed on the first)."""
    return [[where[s.name][r % len(where[s.name])] for s in specs] for r in range(replicas)]


def replicated_step(net, cores, x, labels, sample_offset: int) -> List[int]:
    """Forward and backward of a batch split over the replica graphs `cores` (graph r on part
    r, dropout at that part's place in the batch), then every graph holds the whole batch's
    mean gradient (summed on each device, then across devices with NCCL on GPUs, else through
    host memory: net.gradient_sum_path says which). Returns the graphs that ran (a part is
    empty when the batch is smaller than the replica count)."""
    from .data.loader import shard_bounds
    n, ran, shares = len(x), [], []
    labels = np.asarray(labels)
    for r, core in enumerate(cores):
        lo, hi = shard_bounds(n, r, len(cores))
        shares.append((hi - lo) / n)
        if hi == lo:
            continue
        core.forward(net._batch(x[lo:hi], labels[lo:hi]), True, net.seed, net.step, True,
                     sample_offset + lo)
        core.backward(net.seed, net.step, sample_offset + lo)
        ran.append(r)
    use_wheel_nccl()
    net.gradient_sum_path = _core.sum_replica_gradients(cores, shares)
    return ran


def use_wheel_nccl() -> None:
    """Points the C++ side at the nvidia-nccl wheel's library (pip install "convnet[nccl]")
    where it is installed and no NCCL was loaded yet; otherwise the system's libnccl.so.2."""
    global _nccl_looked
    if _nccl_looked:
        return
    _nccl_looked = True
    try:
        import nvidia.nccl as wheel   # a namespace package: its directory is in __path__
    except ImportError:
        return
    for folder in wheel.__path__:
        library = os.path.join(folder, "lib", "libnccl.so.2")
        if os.path.exists(library):
            _core.set_nccl_library(library)
            return


_nccl_looked = False
