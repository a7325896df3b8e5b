"""The benchmark's op cases: the paper's AlexNet in its one-GPU form at batch 32 and the cuda-convnet
CIFAR-10 net (layers-80sec/18pct: conv 5x5 32/32/64 with max then avg 3/2 pooling, the 18% net's
same-map rnorm, fc64, fc10) at
batch 128. Each case builds its inputs once and returns a closure to time, plus the work it does:
flops for compute-bound ops, bytes read + written for memory-bound ones (every input and output
array touched once; the minimum any implementation must move)."""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import convnet.ops as ops

F32 = np.float32


@dataclass
class Case:
    net: str
    layer: str
    op: str                      # e.g. "conv fwd"
    shape: str                   # human-readable input shape
    run: Callable[[], object]
    flops: float = 0.0           # for GFLOP/s (compute-bound ops)
    bytes: float = 0.0           # for GB/s (memory-bound ops)
    torch: Optional[Callable[[], Callable[[], object]]] = field(default=None, repr=False)


def _rand(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(F32)


def _nbytes(*arrays):
    return float(sum(a.nbytes for a in arrays))


# ---- per-op case builders ---------------------------------------------------------------------

def conv_cases(net, layer, rng, n, c, h, f, k, stride=1, pad=0, groups=1, rule="floor"):
    x, w, b = _rand(rng, n, c, h, h), _rand(rng, f, c // groups, k, k, scale=0.01), _rand(rng, f)
    kw = dict(stride=stride, padding=pad, groups=groups, rule=rule)
    y = ops.conv_forward(x, w, b, **kw)
    dy = _rand(rng, *y.shape)
    flops = 2.0 * n * f * y.shape[2] * y.shape[3] * (c // groups) * k * k
    shape = f"{n}x{c}x{h}x{h} * {f}x{c // groups}x{k}x{k}/{stride}" + (f" g{groups}" if groups > 1 else "")

    def torch_fwd():
        import torch
        tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
        extra = (y.shape[2] - 1) * stride + k - (h + 2 * pad)  # cuda-convnet overhang
        if extra > 0:
            tx = torch.nn.functional.pad(tx, (0, extra, 0, extra))
        return lambda: torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)

    def torch_bwd():
        import torch
        tx = torch.from_numpy(x).requires_grad_()
        tw = torch.from_numpy(w).requires_grad_()
        tb = torch.from_numpy(b).requires_grad_()
        tdy = torch.from_numpy(dy)
        extra = max(0, (y.shape[2] - 1) * stride + k - (h + 2 * pad))

        def run():
            xin = torch.nn.functional.pad(tx, (0, extra, 0, extra)) if extra else tx
            out = torch.nn.functional.conv2d(xin, tw, tb, stride, pad, 1, groups)
            return torch.autograd.grad(out, (tx, tw, tb), tdy)
        return run

    return [
        Case(net, layer, "conv fwd", shape, lambda: ops.conv_forward(x, w, b, **kw), flops=flops,
             torch=torch_fwd),
        Case(net, layer, "conv bwd", shape, lambda: ops.conv_backward(x, w, dy, **kw),
             flops=2 * flops, torch=None),
        Case(net, layer, "conv fwd+bwd", shape,
             lambda: (ops.conv_forward(x, w, b, **kw), ops.conv_backward(x, w, dy, **kw)),
             flops=3 * flops, torch=torch_bwd),
    ]


def local_cases(net, layer, rng, n, c, h, f, k, pad=0):
    oh = ops.conv_output_size(h, k, 1, pad)
    x, w = _rand(rng, n, c, h, h), _rand(rng, oh, oh, f, c, k, k, scale=0.01)
    dy = _rand(rng, n, f, oh, oh)
    flops = 2.0 * n * f * oh * oh * c * k * k
    shape = f"{n}x{c}x{h}x{h} * {oh}x{oh}x{f}x{c}x{k}x{k}"
    return [Case(net, layer, "local fwd", shape, lambda: ops.local_forward(x, w, padding=pad),
                 flops=flops),
            Case(net, layer, "local bwd", shape, lambda: ops.local_backward(x, w, dy, padding=pad),
                 flops=2 * flops)]


def fc_cases(net, layer, rng, n, k, m):
    x, w, b = _rand(rng, n, k), _rand(rng, m, k, scale=0.01), _rand(rng, m)
    dy = _rand(rng, n, m)
    flops = 2.0 * n * k * m
    shape = f"{n}x{k} -> {m}"

    def torch_fwd():
        import torch
        tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
        return lambda: torch.nn.functional.linear(tx, tw, tb)

    return [Case(net, layer, "fc fwd", shape, lambda: ops.fc_forward(x, w, b), flops=flops,
                 torch=torch_fwd),
            Case(net, layer, "fc bwd", shape, lambda: ops.fc_backward(x, w, dy), flops=2 * flops)]


def relu_cases(net, layer, rng, shape):
    x = _rand(rng, *shape)
    y = ops.neuron_forward(x, "relu")
    dy = _rand(rng, *shape)
    text = "x".join(map(str, shape))

    def torch_fwd():
        import torch
        tx = torch.from_numpy(x)
        return lambda: torch.relu(tx)

    return [Case(net, layer, "relu fwd", text, lambda: ops.neuron_forward(x, "relu"),
                 bytes=_nbytes(x, y), torch=torch_fwd),
            Case(net, layer, "relu bwd", text, lambda: ops.neuron_backward(x, y, dy, "relu"),
                 bytes=_nbytes(x, y, dy, x))]


def lrn_cases(net, layer, rng, shape):
    x = _rand(rng, *shape, scale=5.0)
    p = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
    y = ops.lrn_forward(x, **p)
    dy = _rand(rng, *shape)
    text = "x".join(map(str, shape))

    def torch_fwd():
        import torch
        tx = torch.from_numpy(x)
        # PyTorch divides alpha by size: alpha * size gives the paper's alpha.
        return lambda: torch.nn.functional.local_response_norm(tx, 5, alpha=1e-4 * 5, beta=0.75,
                                                               k=2.0)

    return [Case(net, layer, "lrn fwd", text, lambda: ops.lrn_forward(x, **p),
                 bytes=_nbytes(x, y), torch=torch_fwd),
            Case(net, layer, "lrn bwd", text, lambda: ops.lrn_backward(x, y, dy, **p),
                 bytes=_nbytes(x, y, dy, x))]


def rnorm_cases(net, layer, rng, shape, kind="rnorm"):
    """Within-map normalisation: kind "rnorm" or "cnorm"."""
    fwd, bwd = getattr(ops, f"{kind}_forward"), getattr(ops, f"{kind}_backward")
    x = _rand(rng, *shape, scale=5.0)
    p = dict(size=3, scale=0.00005, pow=0.75)
    y = fwd(x, **p)
    dy = _rand(rng, *shape)
    text = "x".join(map(str, shape))
    return [Case(net, layer, f"{kind} fwd", text, lambda: fwd(x, **p), bytes=_nbytes(x, y)),
            Case(net, layer, f"{kind} bwd", text, lambda: bwd(x, y, dy, **p),
                 bytes=_nbytes(x, y, dy, x))]


def pool_cases(net, layer, rng, shape, mode, size=3, stride=2):
    x = _rand(rng, *shape)
    p = dict(mode=mode, size=size, stride=stride)
    y = ops.pool_forward(x, **p)
    dy = _rand(rng, *y.shape)
    text = "x".join(map(str, shape)) + f" {size}/{stride}"

    def torch_fwd():
        import torch
        tx = torch.from_numpy(x)
        pool = torch.nn.functional.max_pool2d if mode == "max" else torch.nn.functional.avg_pool2d
        return lambda: pool(tx, size, stride, ceil_mode=True)

    return [Case(net, layer, f"{mode}pool fwd", text, lambda: ops.pool_forward(x, **p),
                 bytes=_nbytes(x, y), torch=torch_fwd),
            Case(net, layer, f"{mode}pool bwd", text, lambda: ops.pool_backward(x, y, dy, **p),
                 bytes=_nbytes(x, y, dy, x))]


def combine_cases(net, layer, rng, shape):
    """eltsum, eltmax and concat of two inputs (not in the paper's nets; used by custom ones)."""
    a, b = _rand(rng, *shape), _rand(rng, *shape)
    y = ops.eltmax_forward([a, b])
    text = "2 x " + "x".join(map(str, shape))
    return [Case(net, layer, "eltsum fwd", text, lambda: ops.eltsum_forward([a, b], [1.0, -1.0]),
                 bytes=3 * a.nbytes),
            Case(net, layer, "eltmax bwd", text, lambda: ops.eltmax_backward([a, b], y, a),
                 bytes=7 * a.nbytes),
            Case(net, layer, "concat fwd", text, lambda: ops.concat_forward([a, b]),
                 bytes=4 * a.nbytes)]


def dropout_cases(net, layer, rng, shape):
    x = _rand(rng, *shape)
    text = "x".join(map(str, shape))
    return [Case(net, layer, "dropout fwd", text,
                 lambda: ops.dropout_forward(x, p=0.5, seed=1, step=2), bytes=2 * x.nbytes),
            Case(net, layer, "dropout bwd", text,
                 lambda: ops.dropout_backward(x, p=0.5, seed=1, step=2), bytes=2 * x.nbytes)]


def softmax_cases(net, layer, rng, n, k):
    x = _rand(rng, n, k)
    labels = rng.integers(0, k, n)
    return [Case(net, layer, "softmax+logloss", f"{n}x{k}",
                 lambda: ops.softmax_logloss(x, labels, topk=5), bytes=3 * x.nbytes)]


def sgd_case(net, rng, weight_shapes):
    params = [(_rand(rng, *s, scale=0.01), _rand(rng, *s), np.zeros(s, F32)) for s in weight_shapes]
    total = sum(int(np.prod(s)) for s in weight_shapes)

    def run():
        for w, g, v in params:
            ops.sgd_update(w, g, v, eps=0.01, mom=0.9, wc=0.0005)
    # reads w, grad, v; writes w, v
    return [Case(net, "all weights", "sgd update", f"{total / 1e6:.1f}M params", run,
                 bytes=5.0 * 4 * total)]


# ---- the two nets ------------------------------------------------------------------------------

def alexnet(rng, n=32):
    a = "alexnet"
    cases = []
    cases += conv_cases(a, "conv1", rng, n, 3, 224, 96, 11, stride=4, rule="cuda-convnet")
    cases += relu_cases(a, "relu1", rng, (n, 96, 55, 55))
    cases += lrn_cases(a, "lrn1", rng, (n, 96, 55, 55))
    cases += pool_cases(a, "pool1", rng, (n, 96, 55, 55), "max")
    cases += conv_cases(a, "conv2", rng, n, 96, 27, 256, 5, pad=2, groups=2)
    cases += lrn_cases(a, "lrn2", rng, (n, 256, 27, 27))
    cases += pool_cases(a, "pool2", rng, (n, 256, 27, 27), "max")
    cases += conv_cases(a, "conv3", rng, n, 256, 13, 384, 3, pad=1)
    cases += conv_cases(a, "conv4", rng, n, 384, 13, 384, 3, pad=1, groups=2)
    cases += conv_cases(a, "conv5", rng, n, 384, 13, 256, 3, pad=1, groups=2)
    cases += pool_cases(a, "pool5", rng, (n, 256, 13, 13), "max")
    cases += fc_cases(a, "fc6", rng, n, 9216, 4096)
    cases += dropout_cases(a, "drop6", rng, (n, 4096))
    cases += fc_cases(a, "fc7", rng, n, 4096, 4096)
    cases += fc_cases(a, "fc8", rng, n, 4096, 1000)
    cases += softmax_cases(a, "prob", rng, n, 1000)
    cases += sgd_case(a, rng, [(96, 3, 11, 11), (256, 48, 5, 5), (384, 256, 3, 3),
                               (384, 192, 3, 3), (256, 192, 3, 3), (4096, 9216), (4096, 4096),
                               (1000, 4096)])
    return cases


def cifar10(rng, n=128):
    c = "cifar10"
    cases = []
    cases += conv_cases(c, "conv1", rng, n, 3, 32, 32, 5, pad=2)
    cases += pool_cases(c, "pool1", rng, (n, 32, 32, 32), "max")
    cases += relu_cases(c, "relu1", rng, (n, 32, 16, 16))
    cases += rnorm_cases(c, "rnorm1", rng, (n, 32, 16, 16))
    cases += conv_cases(c, "conv2", rng, n, 32, 16, 32, 5, pad=2)
    cases += pool_cases(c, "pool2", rng, (n, 32, 16, 16), "avg")
    cases += rnorm_cases(c, "rnorm2", rng, (n, 32, 8, 8))
    cases += conv_cases(c, "conv3", rng, n, 32, 8, 64, 5, pad=2)
    cases += pool_cases(c, "pool3", rng, (n, 64, 8, 8), "avg")
    cases += combine_cases(c, "(extra)", rng, (n, 64, 8, 8))
    cases += local_cases(c, "11pct local3", rng, n, 64, 6, 32, 3, pad=1)
    cases += rnorm_cases(c, "(extra)", rng, (n, 32, 16, 16), kind="cnorm")
    cases += fc_cases(c, "fc64", rng, n, 1024, 64)
    cases += fc_cases(c, "fc10", rng, n, 64, 10)
    cases += softmax_cases(c, "prob", rng, n, 10)
    cases += sgd_case(c, rng, [(32, 3, 5, 5), (32, 32, 5, 5), (64, 32, 5, 5), (64, 1024),
                               (10, 64)])
    return cases


def quick(rng):
    """A tiny set for smoke tests: one case of each kind at small shapes."""
    q = "quick"
    cases = []
    cases += conv_cases(q, "conv", rng, 2, 3, 12, 8, 3, pad=1)
    cases += fc_cases(q, "fc", rng, 4, 32, 8)
    cases += local_cases(q, "local", rng, 2, 3, 6, 4, 3, pad=1)
    cases += relu_cases(q, "relu", rng, (2, 8, 6, 6))
    cases += lrn_cases(q, "lrn", rng, (2, 8, 6, 6))
    cases += rnorm_cases(q, "rnorm", rng, (2, 8, 6, 6))
    cases += rnorm_cases(q, "cnorm", rng, (2, 8, 6, 6), kind="cnorm")
    cases += pool_cases(q, "pool", rng, (2, 8, 7, 7), "max")
    cases += dropout_cases(q, "drop", rng, (4, 64))
    cases += combine_cases(q, "combine", rng, (2, 8, 3, 3))
    cases += softmax_cases(q, "prob", rng, 4, 10)
    cases += sgd_case(q, rng, [(8, 3, 3, 3)])
    return cases
