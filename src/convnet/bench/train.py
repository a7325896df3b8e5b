"""python -m convnet.bench --train: the whole training step (forward, backward, SGD with momentum)
of each shipped net at its usual batch, ms per step and images/s, on the CPU or a GPU. Nets are
timed in turn, several rounds, and each figure is the median over rounds, so a disturbance hits
one round of every net rather than one net. Where PyTorch is installed, the same net built in
PyTorch (torch_train.py, in its faster memory layout) is timed right after ours in every round,
and the ratio ours/PyTorch is printed. --trainer adds convnet-train's loop against the step
(trainer.py)."""

import statistics
import time
from pathlib import Path

import numpy as np

import convnet
from convnet import _core

from . import torch_train, trainer

# (config stem, batch): AlexNet at the paper's per-GPU batch, the others at cuda-convnet's 128.
NETS = [("alexnet", 32), ("cifar10-80sec", 128), ("cifar10-18pct", 128), ("mnist", 128)]


def layer_defs():
    """layer_defs/ in the working directory (a checkout's root) or the source tree, or None."""
    for root in (Path.cwd(), Path(__file__).resolve().parents[3]):
        if (root / "layer_defs" / "alexnet.cfg").is_file():
            return root / "layer_defs"
    return None


def _input(net):
    """(image shape, classes) of a net: its first data layer's shape, its logreg cost's width."""
    data = [s for s in net.specs if s.type == "data" and s["dataIdx"] == 0][0]
    cost = [s for s in net.specs if s.type == "cost.logreg"][0]
    return tuple(data["shape"]), int(np.prod(net.output_shape(cost.inputs[1])))


def _batch(net, batch, rng):
    shape, classes = _input(net)
    x = (rng.standard_normal((batch,) + shape) * 50).astype(np.float32)
    return x, rng.integers(0, classes, batch)


def _sync(device):
    if device != "cpu":
        _core.cuda_synchronize(int(device.split(":")[1]))


def run(args) -> int:
    root = layer_defs()
    if root is None:
        raise SystemExit("convnet.bench --train: run it from the checkout's root, where "
                         "layer_defs/ is")
    device = "cpu" if args.device == "cpu" else "cuda:0"
    rounds, steps = (1, 1) if args.quick else (3, 5)
    rng = np.random.default_rng(0)
    nets = []
    for stem, batch in NETS:
        if args.filter and args.filter not in stem:
            continue
        batch = 2 if args.quick else batch
        net = convnet.Net.from_cfg(root / f"{stem}.cfg", root / f"{stem}-params.cfg", seed=0)
        if device != "cpu":
            net.to(device)
        x, labels = _batch(net, batch, rng)
        net.train_step(x, labels)  # first touch and workspaces outside the timing
        _sync(device)
        theirs, layout = _torch_step(net, x, labels, device)
        nets.append((stem, batch, net, x, labels, theirs, layout))
    times = {stem: [] for stem, *_ in nets}
    torch_times = {stem: [] for stem, *_ in nets}
    for _ in range(rounds):
        for stem, batch, net, x, labels, theirs, _layout in nets:
            start = time.perf_counter()
            for _ in range(steps):
                net.train_step(x, labels)
            _sync(device)
            times[stem].append((time.perf_counter() - start) / steps)
            if theirs is not None:
                start = time.perf_counter()
                for _ in range(steps):
                    theirs()
                torch_times[stem].append((time.perf_counter() - start) / steps)
    print(f"whole training step on {device} ({convnet.get_num_threads()} threads), median of "
          f"{rounds} round(s) of {steps} step(s), ours and PyTorch alternating")
    print(f"{'net':15} {'batch':>5} {'ms/step':>9} {'images/s':>9} {'PyTorch ms':>11} "
          f"{'ours/PyTorch':>12}  PyTorch layout")
    for stem, batch, *_rest, layout in nets:
        ms = 1e3 * statistics.median(times[stem])
        line = f"{stem:15} {batch:5d} {ms:9.1f} {batch / ms * 1e3:9.0f}"
        if torch_times[stem]:
            theirs = 1e3 * statistics.median(torch_times[stem])
            line += f" {theirs:11.1f} {ms / theirs:12.2f}  {layout}"
        else:
            line += f" {'-':>11} {'-':>12}  {layout}"
        print(line)
    if getattr(args, "layers", False):
        for stem, batch, net, x, labels, *_ in nets:
            _print_layer_times(stem, batch, net, x, labels, steps, device)
    if getattr(args, "trainer", False):
        trainer.run([(stem, batch, net) + _input(net) for stem, batch, net, *_ in nets],
                    rounds=1 if args.quick else 2,
                    test_freq=2 if args.quick else trainer.TEST_FREQ)
    return 0


def _print_layer_times(stem, batch, net, x, labels, steps, device):
    net.profile()
    for _ in range(steps):
        net.train_step(x, labels)
    _sync(device)
    times = net.layer_times()
    net.profile(False)
    total = sum(sum(t) for t in times.values())
    print(f"\n{stem}, batch {batch}: ms per step in each layer (profiled, {steps} steps)")
    print(f"{'layer':16} {'forward':>8} {'backward':>9} {'update':>7} {'share':>6}")
    for name, t in times.items():
        if sum(t) > 0:
            ms = [1e3 * v / steps for v in t]
            print(f"{name:16} {ms[0]:8.2f} {ms[1]:9.2f} {ms[2]:7.2f} {sum(t) / total:6.1%}")
    print(f"{'total':16} {1e3 * total / steps:8.1f}")


def _torch_step(net, x, labels, device):
    """PyTorch's step for the same net on the CPU, or (None, why not)."""
    if device != "cpu":
        return None, "not compared on a GPU"
    try:
        return torch_train.step_function(net, x, labels, convnet.get_num_threads())
    except NotImplementedError as e:
        return None, f"no translation ({e})"
