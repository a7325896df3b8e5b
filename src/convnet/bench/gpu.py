"""python -m convnet.bench --device cuda: our kernels at the AlexNet (batch 128) and CIFAR-10
(batch 128) shapes, timed with CUDA events (warm-up, then the mean over many launches, repeated
and the median taken), against the device's limits measured or computed in the same run:
device-to-device copy bandwidth for the memory-bound kernels, FP32 and tensor-core peaks for
convolutions and matrix products; cuDNN/cuBLAS through PyTorch for the same op when PyTorch with
CUDA is installed; and the whole AlexNet training step against PyTorch's AlexNet.

Each case calls the op's binding (`_core.<op>`) on device tensors; a case whose op has no kernel
in this build is listed as "no kernel" instead of failing the run."""

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import numpy as np

import convnet
from convnet import _core
from .train import layer_defs

DEVICE = "cuda:0"

# Dense FLOPs per clock per SM: (FP32 CUDA cores, TF32 tensor cores, BF16 tensor cores).
PER_SM_CLOCK = {(7, 5): (128, 0, 0), (8, 0): (128, 1024, 2048), (8, 6): (256, 512, 1024),
                (8, 9): (256, 512, 1024), (9, 0): (256, 2048, 4096)}


@dataclass
class GpuCase:
    net: str
    layer: str
    op: str
    run: Callable[[], None]              # launches the kernel(s) once
    flops: float = 0.0                   # 0: memory-bound, judged by bytes
    nbytes: float = 0.0
    precision: str = "fp32"
    torch_run: Optional[Callable[[], None]] = None
    results: dict = field(default_factory=dict)


def peaks(info) -> dict:
    fp32, tf32, bf16 = PER_SM_CLOCK.get((info["major"], info["minor"]), (0, 0, 0))
    scale = info["sms"] * info["clock_ghz"] * 1e9
    return {"fp32": fp32 * scale, "tf32": tf32 * scale, "bf16": bf16 * scale}


def event_ms(run, repeats=20, warmup=3, rounds=5) -> float:
    """Median over `rounds` of the CUDA-event mean of `repeats` launches."""
    return statistics.median(_core.cuda_time_ms(run, repeats, warmup) for _ in range(rounds))


def copy_bandwidth(nbytes=1 << 30) -> float:
    """Device-to-device copy, bytes read + written per second: the memory-bound kernels' limit."""
    src = convnet.Tensor.zeros([nbytes // 4], "float32", DEVICE)
    ms = event_ms(lambda: src.to(DEVICE), repeats=10)
    return 2 * nbytes / (ms * 1e-3)


def dev(rng, *shape, scale=1.0):
    return convnet.Tensor.from_numpy((rng.standard_normal(shape) * scale).astype(np.float32),
                                     DEVICE)


def empty(*shape):
    return convnet.Tensor.zeros(list(shape), "float32", DEVICE)


def _torch():
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def memory_cases(net, layer, rng, shape, torch) -> List[GpuCase]:
    """The memory-bound kernels on one activation shape: relu, LRN, overlapping max-pool 3/2 and
    dropout, forward and backward. Bytes are the minimum each must move."""
    x, y, dy, dx = dev(rng, *shape), empty(*shape), dev(rng, *shape), empty(*shape)
    n, c, h, w = shape
    ph = 1 + (h - 3 + 1) // 2
    py_, pdy = empty(n, c, ph, ph), dev(rng, n, c, ph, ph)
    e, pe = float(np.prod(shape)) * 4, float(n * c * ph * ph) * 4
    pool = ("max", 3, 3, 2, 2, 0, 0)
    cases = [
        GpuCase(net, layer, "relu fwd",
                lambda: _core.neuron_forward(x, y, "relu", 0.0, 0.0), nbytes=2 * e),
        GpuCase(net, layer, "relu bwd",
                lambda: _core.neuron_backward(x, y, dy, dx, "relu", 0.0, 0.0),
                nbytes=3 * e),
        GpuCase(net, layer, "lrn fwd", lambda: _core.lrn_forward(
            x, y, 5, 2, False, 1e-4, 0.75, 2.0), nbytes=2 * e),
        GpuCase(net, layer, "lrn bwd", lambda: _core.lrn_backward(
            x, y, dy, dx, 5, 2, False, 1e-4, 0.75, 2.0), nbytes=4 * e),
        GpuCase(net, layer, "maxpool fwd", lambda: _core.pool_forward(x, py_, *pool),
                nbytes=e + pe),
        GpuCase(net, layer, "maxpool bwd", lambda: _core.pool_backward(
            x, py_, pdy, dx, *pool), nbytes=2 * e + 2 * pe),
        GpuCase(net, layer, "dropout fwd", lambda: _core.dropout_forward(
            x, y, 0.5, 1, 1, 7, True, False), nbytes=2 * e),
        GpuCase(net, layer, "dropout bwd", lambda: _core.dropout_backward(
            dy, dx, 0.5, 1, 1, 7, True, False), nbytes=2 * e),
    ]
    if torch is not None:
        tx = torch.randn(*shape, device="cuda")
        lrn = torch.nn.LocalResponseNorm(5, alpha=5e-4, beta=0.75, k=2.0)
        refs = {"relu fwd": lambda: torch.relu(tx), "lrn fwd": lambda: lrn(tx),
                "maxpool fwd": lambda: torch.nn.functional.max_pool2d(tx, 3, 2),
                "dropout fwd": lambda: torch.nn.functional.dropout(tx, 0.5, True)}
        for case in cases:
            case.torch_run = refs.get(case.op)
    return cases


def fc_sgd_softmax_cases(net, rng, n, k, m, torch) -> List[GpuCase]:
    """The fully connected product (our GEMM), the SGD update of its weights, softmax+log-loss."""
    x, wt, b, y = dev(rng, n, k), dev(rng, m, k, scale=0.01), dev(rng, m), empty(n, m)
    g, v = dev(rng, m, k, scale=1e-3), dev(rng, m, k, scale=1e-3)
    labels = rng.integers(0, m, n).astype(np.int32)
    probs = empty(n, m)
    cases = [GpuCase(net, f"fc{m}", "fc fwd", lambda: _core.fc_forward(x, wt, b, y),
                     flops=2.0 * n * k * m),
             GpuCase(net, f"fc{m}", "sgd update", lambda: _core.sgd_update(
                 wt, g, v, 1e-9, 0.9, 5e-4), nbytes=5.0 * m * k * 4),
             GpuCase(net, f"fc{m}", "softmax+logloss", lambda: _core.softmax_logloss(
                 y, labels, probs, None, 5 if m >= 5 else 1), nbytes=2.0 * n * m * 4)]
    if torch is not None:
        tx, tw = torch.randn(n, k, device="cuda"), torch.randn(m, k, device="cuda")
        cases[0].torch_run = lambda: torch.nn.functional.linear(tx, tw)
    return cases


def conv_case(net, layer, rng, n, c, h, f, k, stride, pad, groups, precision, torch):
    oh = 1 + (h + 2 * pad - k + stride - 1) // stride
    x, w, b = dev(rng, n, c, h, h), dev(rng, f, c // groups, k, k, scale=0.01), dev(rng, f)
    y = empty(n, f, oh, oh)
    flops = 2.0 * n * f * oh * oh * (c // groups) * k * k
    dy, dx, dw, db = dev(rng, n, f, oh, oh), empty(n, c, h, h), empty(*w.shape), empty(f)
    fwd = GpuCase(net, layer, f"conv fwd {precision}",
                  lambda: _core.conv_forward(x, w, b, y, stride, stride, pad, pad, groups),
                  flops=flops, precision=precision)
    bwd = GpuCase(net, layer, f"conv bwd {precision}",
                  lambda: _core.conv_backward(x, w, dy, dx, dw, db, stride, stride, pad,
                                                     pad, groups),
                  flops=2 * flops, precision=precision)
    if torch is not None:
        tx = torch.randn(n, c, h, h, device="cuda", requires_grad=True)
        tw = (torch.randn(f, c // groups, k, k, device="cuda") * 0.01).requires_grad_()
        fwd.torch_run = lambda: torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups)
        out = torch.nn.functional.conv2d(tx, tw, None, stride, pad, 1, groups)
        grad = torch.randn_like(out)
        bwd.torch_run = lambda: torch.autograd.grad(out, (tx, tw), grad, retain_graph=True)
    return [fwd, bwd]


def alexnet_cases(rng, torch, precision, n=128) -> List[GpuCase]:
    cases = []
    for layer, c, h, f, k, s, p, g in (("conv1", 3, 224, 96, 11, 4, 0, 1),
                                       ("conv2", 96, 27, 256, 5, 1, 2, 2),
                                       ("conv3", 256, 13, 384, 3, 1, 1, 1),
                                       ("conv4", 384, 13, 384, 3, 1, 1, 2),
                                       ("conv5", 384, 13, 256, 3, 1, 1, 2)):
        cases += conv_case("alexnet", layer, rng, n, c, h, f, k, s, p, g, precision, torch)
    cases += memory_cases("alexnet", "conv1", rng, (n, 96, 55, 55), torch)
    cases += memory_cases("alexnet", "conv2", rng, (n, 256, 27, 27), torch)
    cases += fc_sgd_softmax_cases("alexnet", rng, n, 9216, 4096, torch)
    cases += fc_sgd_softmax_cases("alexnet", rng, n, 4096, 1000, torch)
    return cases


def cifar_cases(rng, torch, precision, n=128) -> List[GpuCase]:
    cases = []
    for layer, c, f in (("conv1", 3, 32), ("conv2", 32, 32), ("conv3", 32, 64)):
        h = {"conv1": 32, "conv2": 16, "conv3": 8}[layer]
        cases += conv_case("cifar10", layer, rng, n, c, h, f, 5, 1, 2, 1, precision, torch)
    cases += memory_cases("cifar10", "conv1", rng, (n, 32, 32, 32), torch)
    cases += fc_sgd_softmax_cases("cifar10", rng, n, 1024, 10, torch)
    return cases


def _torch_alexnet(torch):
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 96, 11, 4), nn.ReLU(), nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0),
        nn.MaxPool2d(3, 2), nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(),
        nn.LocalResponseNorm(5, 5e-4, 0.75, 2.0), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(9216, 4096), nn.ReLU(), nn.Dropout(0.5),
        nn.Linear(4096, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 1000))


def training_step(torch, precision, root, batch=128, steps=10) -> dict:
    """Images/s of a whole AlexNet SGD step: ours, and PyTorch + cuDNN with the same layers."""
    convnet.set_precision(precision)
    net = convnet.Net.from_cfg(root / "alexnet.cfg", root / "alexnet-params.cfg").to(DEVICE)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((batch, 3, 224, 224)) * 50).astype(np.float32)
    y = rng.integers(0, 1000, batch)
    net.train_step(x, y)
    _core.cuda_synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        net.train_step(x, y)
    _core.cuda_synchronize()
    ours = batch * steps / (time.perf_counter() - start)
    out = {"ours_images_per_s": ours}
    if torch is not None:
        tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cudnn.benchmark = True
        model = _torch_alexnet(torch).cuda()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        tx, ty = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")

        def step():
            opt.zero_grad(set_to_none=True)
            with autocast:
                loss = torch.nn.functional.cross_entropy(model(tx), ty)
            loss.backward()
            opt.step()
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        out["torch_images_per_s"] = batch * steps / (time.perf_counter() - start)
        out["ratio"] = ours / out["torch_images_per_s"]
    return out


def run(args) -> int:
    if convnet.cuda_device_count() == 0:
        raise SystemExit("convnet.bench --device cuda: no GPU on this machine "
                         f"(built with CUDA: {convnet.built_with_cuda()})")
    # --quick: batch 2, one timed launch per case (a smoke test, e.g. on the emulated device).
    n, timing = (2, dict(repeats=1, warmup=0, rounds=1)) if args.quick else (128, {})
    info = _core.cuda_device_info(0)
    peak = peaks(info)
    bandwidth = copy_bandwidth(8 << 20 if args.quick else 1 << 30)
    torch = _torch()
    print(f"device: {info['name']} (sm_{info['major']}{info['minor']}, {info['sms']} SMs at "
          f"{info['clock_ghz']:.2f} GHz); copy bandwidth {bandwidth / 1e9:.0f} GB/s; peaks FP32 "
          f"{peak['fp32'] / 1e12:.1f}, TF32 {peak['tf32'] / 1e12:.0f}, BF16 "
          f"{peak['bf16'] / 1e12:.0f} TFLOP/s; PyTorch: "
          f"{torch.__version__ if torch else 'not installed (no cuDNN column)'}")
    rng = np.random.default_rng(0)
    rows = []
    for precision in ("fp32", "tf32", "bf16"):
        if precision != "fp32" and not peak[precision]:
            continue
        convnet.set_precision(precision)
        cases = alexnet_cases(rng, torch, precision, n) + cifar_cases(rng, torch, precision, n)
        if precision != "fp32":
            cases = [c for c in cases if c.flops]
        if args.filter:
            cases = [c for c in cases if args.filter in f"{c.net} {c.layer} {c.op}"]
        for c in cases:
            if c.flops:
                c.precision = precision
        for c in cases:
            if c.run is None:
                rows.append((c, None, None, None))
                continue
            ms = event_ms(c.run, **timing)
            limit = (c.flops / peak[c.precision] if c.flops else c.nbytes / bandwidth) * 1e3
            ref = event_ms(c.torch_run, **timing) if c.torch_run else None
            rows.append((c, ms, limit / ms if ms else None, ref / ms if ref else None))
    print(f"{'net':8} {'layer':6} {'op':16} {'ms':>9} {'rate':>14} {'of limit':>9} "
          f"{'cuDNN/ours':>10}")
    for c, ms, frac, ratio in rows:
        if ms is None:
            print(f"{c.net:8} {c.layer:6} {c.op:16} {'no kernel':>9}")
            continue
        rate = (f"{c.flops / ms / 1e9:.0f} GFLOP/s" if c.flops
                else f"{c.nbytes / ms / 1e6:.0f} GB/s")
        print(f"{c.net:8} {c.layer:6} {c.op:16} {ms:9.3f} {rate:>14} {100 * frac:8.1f}% "
              f"{'' if ratio is None else f'{ratio:10.2f}'}")
    root = layer_defs()
    if args.filter and args.filter not in "alexnet step":
        pass  # a filtered run times only the cases it names
    elif root is None:
        print("AlexNet training step: skipped (run from the checkout's root, where "
              "layer_defs/alexnet.cfg is)")
    else:
        for precision in ("fp32",) if args.quick else ("fp32", "tf32"):
            step = training_step(torch, precision, root, *((2, 1) if args.quick else ()))
            line = (f"AlexNet training step, batch {2 if args.quick else 128}, {precision}: "
                    f"ours {step['ours_images_per_s']:.0f}")
            if "torch_images_per_s" in step:
                line += (f" images/s, PyTorch+cuDNN {step['torch_images_per_s']:.0f} images/s, "
                         f"ratio {step['ratio']:.2f}")
            print(line)
    convnet.set_precision("fp32")
    return 0
