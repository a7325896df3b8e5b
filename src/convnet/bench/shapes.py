"""The benchmark's op cases: the paper's AlexNet in its one-GPU form at batch 32 and cuda-convnet's
CIFAR-10 "18pct" net (layers-18pct.cfg: conv 5x5 32 pad 2, max pool 3/2 + relu, rnorm 3, conv 5x5
32 pad 2 + relu, avg pool 3/2, rnorm 3, conv 5x5 64 pad 2 + relu, avg pool 3/2 [4x4x64], fc10) at
batch 128, plus the ops the other CIFAR-10 nets add (cnorm, local, eltsum/eltmax/concat) at those
shapes. Each case builds its inputs once and returns a closure to time, plus the work it does:
flops for compute-bound ops, bytes read + written for memory-bound ones (every input and output
array touched once; the minimum any implementation must move). `torch`, where given, builds the
same op in PyTorch (only called when torch imports; it is not a dependency)."""

from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

import convnet.ops as ops
from convnet import _core
from convnet.ops._checks import tensor

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


def _torch_backward(build):
    """A PyTorch timing factory for the backward alone of an op with no public backward function:
    build(torch) runs the forward once with autograd on and returns (out, inputs, dy); the timed
    call is torch.autograd.grad over that retained graph (the forward is not repeated)."""
    def factory():
        import torch
        with torch.enable_grad():
            out, inputs, dy = build(torch)
        return lambda: torch.autograd.grad(out, inputs, dy, retain_graph=True)
    return factory


# ---- per-op case builders ---------------------------------------------------------------------

def conv_cases(net, layer, rng, n, c, h, f, k, stride=1, pad=0, groups=1, rule="floor"):
    x, w, b = _rand(rng, n, c, h, h), _rand(rng, f, c // groups, k, k, scale=0.01), _rand(rng, f)
    kw = dict(stride=stride, padding=pad, groups=groups, rule=rule)
    y = ops.conv_forward(x, w, b, **kw)
    dy = _rand(rng, *y.shape)
    flops = 2.0 * n * f * y.shape[2] * y.shape[3] * (c // groups) * k * k
    shape = (f"{n}x{c}x{h}x{h} * {f}x{c // groups}x{k}x{k}/{stride}"
             + (f" g{groups}" if groups > 1 else ""))

    def torch_fwd():
        import torch
        tx, tw, tb = (torch.from_numpy(a) for a in (x, w, b))
        extra = (y.shape[2] - 1) * stride + k - (h + 2 * pad)  # cuda-convnet overhang
        if extra > 0:
            tx = torch.nn.functional.pad(tx, (0, extra, 0, extra))
        return lambda: torch.nn.functional.conv2d(tx, tw, tb, stride, pad, 1, groups)

    def torch_bwd_only():
        # aten's convolution_backward: dx, dw and db from dy, the backward autograd would run.
        import torch
        tx, tw, tdy = (torch.from_numpy(a) for a in (x, w, dy))
        extra = max(0, (y.shape[2] - 1) * stride + k - (h + 2 * pad))
        if extra:
            tx = torch.nn.functional.pad(tx, (0, extra, 0, extra))
        return lambda: torch.ops.aten.convolution_backward(
            tdy, tx, tw, [f], [stride] * 2, [pad] * 2, [1, 1], False, [0, 0], groups,
            [True, True, True])

    def torch_fwd_bwd():
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
        # backward: dx and dw are one forward's flops each; db (a sum over dy) is not counted.
        Case(net, layer, "conv bwd", shape, lambda: ops.conv_backward(x, w, dy, **kw),
             flops=2 * flops, torch=torch_bwd_only),
        Case(net, layer, "conv fwd+bwd", shape,
             lambda: (ops.conv_forward(x, w, b, **kw), ops.conv_backward(x, w, dy, **kw)),
             flops=3 * flops, torch=torch_fwd_bwd),
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

    def torch_bwd():
        import torch
        tx, tw, tdy = (torch.from_numpy(a) for a in (x, w, dy))
        return lambda: (torch.mm(tdy, tw), torch.mm(tdy.t(), tx), tdy.sum(0))

    return [Case(net, layer, "fc fwd", shape, lambda: ops.fc_forward(x, w, b), flops=flops,
                 torch=torch_fwd),
            Case(net, layer, "fc bwd", shape, lambda: ops.fc_backward(x, w, dy), flops=2 * flops,
                 torch=torch_bwd)]


def relu_cases(net, layer, rng, shape):
    x = _rand(rng, *shape)
    y = ops.neuron_forward(x, "relu")
    dy = _rand(rng, *shape)
    text = "x".join(map(str, shape))

    def torch_fwd():
        import torch
        tx = torch.from_numpy(x)
        return lambda: torch.relu(tx)

    def torch_bwd():
        import torch
        ty, tdy = torch.from_numpy(y), torch.from_numpy(dy)
        return lambda: torch.ops.aten.threshold_backward(tdy, ty, 0.0)

    # bwd reads x, y and dy and writes dx (our API passes x; PyTorch's reads only y and dy).
    return [Case(net, layer, "relu fwd", text, lambda: ops.neuron_forward(x, "relu"),
                 bytes=_nbytes(x, y), torch=torch_fwd),
            Case(net, layer, "relu bwd", text, lambda: ops.neuron_backward(x, y, dy, "relu"),
                 bytes=_nbytes(x, y, dy, x), torch=torch_bwd)]


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

    def torch_bwd(torch):
        tx = torch.from_numpy(x).requires_grad_()
        out = torch.nn.functional.local_response_norm(tx, 5, alpha=1e-4 * 5, beta=0.75, k=2.0)
        return out, (tx,), torch.from_numpy(dy)

    return [Case(net, layer, "lrn fwd", text, lambda: ops.lrn_forward(x, **p),
                 bytes=_nbytes(x, y), torch=torch_fwd),
            Case(net, layer, "lrn bwd", text, lambda: ops.lrn_backward(x, y, dy, **p),
                 bytes=_nbytes(x, y, dy, x), torch=_torch_backward(torch_bwd))]


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

    def torch_bwd(torch):
        # max: PyTorch's backward scatters through the indices its forward saved.
        tx = torch.from_numpy(x).requires_grad_()
        pool = torch.nn.functional.max_pool2d if mode == "max" else torch.nn.functional.avg_pool2d
        return pool(tx, size, stride, ceil_mode=True), (tx,), torch.from_numpy(dy)

    if mode == "max":
        # What a max-pool layer runs on the CPU: forward keeps each window's winner (an int32 per
        # output, in a buffer kept from step to step) and backward scatters dy through them, as
        # PyTorch does with its indices. The numpy op API has no winners: its backward compares
        # x with y instead (slower; not what training runs).
        winners, dx = np.empty(y.shape, F32), np.empty_like(x)
        params = (mode, size, size, stride, stride, 0, 0)
        tx, ty, tdy, tdx, tw = (tensor(a) for a in (x, y.copy(), dy, dx, winners))

        def forward():
            _core.pool_forward(tx, ty, *params, winners=tw)
        forward()
        return [Case(net, layer, "maxpool fwd", text + " winners", forward,
                     bytes=_nbytes(x, y, winners), torch=torch_fwd),
                Case(net, layer, "maxpool bwd", text + " winners",
                     lambda: _core.pool_backward(tx, ty, tdy, tdx, *params, winners=tw),
                     bytes=_nbytes(dy, winners, dx), torch=_torch_backward(torch_bwd))]
    return [Case(net, layer, f"{mode}pool fwd", text, lambda: ops.pool_forward(x, **p),
                 bytes=_nbytes(x, y), torch=torch_fwd),
            Case(net, layer, f"{mode}pool bwd", text, lambda: ops.pool_backward(x, y, dy, **p),
                 bytes=_nbytes(x, y, dy, x), torch=_torch_backward(torch_bwd))]


def combine_cases(net, layer, rng, shape):
    """eltsum, eltmax and concat of two inputs (not in the paper's nets; used by custom ones)."""
    a, b = _rand(rng, *shape), _rand(rng, *shape)
    y = ops.eltmax_forward([a, b])
    text = "2 x " + "x".join(map(str, shape))
    n = shape[0]

    def tensors():
        import torch
        return torch, torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(y)

    def torch_sum():
        torch, ta, tb, _ = tensors()
        return lambda: torch.add(ta, tb, alpha=-1.0)

    def torch_max_bwd():
        torch, ta, tb, ty = tensors()
        zero = torch.zeros((), dtype=ta.dtype)
        return lambda: (torch.where(ta == ty, ta, zero), torch.where(tb == ty, ta, zero))

    def torch_concat():
        torch, ta, tb, _ = tensors()
        return lambda: torch.cat((ta.reshape(n, -1), tb.reshape(n, -1)), 1)

    # eltsum: reads 2, writes 1; eltmax bwd: reads a, b, y, dy, writes 2; concat: reads 2, writes 2.
    return [Case(net, layer, "eltsum fwd", text, lambda: ops.eltsum_forward([a, b], [1.0, -1.0]),
                 bytes=3 * a.nbytes, torch=torch_sum),
            Case(net, layer, "eltmax bwd", text, lambda: ops.eltmax_backward([a, b], y, a),
                 bytes=6 * a.nbytes, torch=torch_max_bwd),
            Case(net, layer, "concat fwd", text, lambda: ops.concat_forward([a, b]),
                 bytes=4 * a.nbytes, torch=torch_concat)]


def bias_cases(net, layer, rng, shape):
    """A bias per filter and position (conv with sharedBiases=0): add, and its batch sum."""
    x, b = _rand(rng, *shape), _rand(rng, *shape[1:])
    text = "x".join(map(str, shape))

    def torch_add():
        import torch
        tx, tb = torch.from_numpy(x), torch.from_numpy(b)
        return lambda: tx + tb

    def torch_sum():
        import torch
        tx = torch.from_numpy(x)
        return lambda: tx.sum(0)

    # forward reads x and writes y (b is small); backward reads dy once.
    return [Case(net, layer, "bias fwd", text, lambda: ops.bias_add_forward(x, b),
                 bytes=2 * x.nbytes, torch=torch_add),
            Case(net, layer, "bias bwd", text, lambda: ops.bias_add_backward(x),
                 bytes=x.nbytes + b.nbytes, torch=torch_sum)]


def dropout_cases(net, layer, rng, shape):
    x = _rand(rng, *shape)
    text = "x".join(map(str, shape))

    def torch_fwd():
        # PyTorch draws its mask from its own generator (and stores it); ours regenerates it from
        # a counter-based hash, so backward needs no stored mask.
        import torch
        tx = torch.from_numpy(x)
        return lambda: torch.nn.functional.dropout(tx, 0.5, True)

    def torch_bwd(torch):
        tx = torch.from_numpy(x).requires_grad_()
        return torch.nn.functional.dropout(tx, 0.5, True), (tx,), torch.from_numpy(x)

    # fwd reads x, writes y; bwd reads dy, writes dx (the mask is recomputed, never stored).
    return [Case(net, layer, "dropout fwd", text,
                 lambda: ops.dropout_forward(x, p=0.5, seed=1, step=2), bytes=2 * x.nbytes,
                 torch=torch_fwd),
            Case(net, layer, "dropout bwd", text,
                 lambda: ops.dropout_backward(x, p=0.5, seed=1, step=2), bytes=2 * x.nbytes,
                 torch=_torch_backward(torch_bwd))]


def softmax_cases(net, layer, rng, n, k):
    x = _rand(rng, n, k)
    labels = rng.integers(0, k, n)

    def torch_fwd():
        # The same outputs: probabilities, summed log-loss, dx = probs - onehot, top-1/top-k errors.
        import torch
        tx, tl = torch.from_numpy(x), torch.from_numpy(labels).reshape(n, 1)
        rows = torch.arange(n)

        def run():
            logp = torch.log_softmax(tx, 1)
            loss = -logp.gather(1, tl).sum()
            probs = logp.exp()
            dx = probs.clone()
            dx[rows, tl[:, 0]] -= 1
            top = probs.topk(min(5, k), 1).indices
            return probs, loss.item(), dx, (top[:, 0] != tl[:, 0]).sum().item(), \
                (~(top == tl).any(1)).sum().item()
        return run

    # reads x, writes probs and dx (labels and the scalars are negligible).
    return [Case(net, layer, "softmax+logloss", f"{n}x{k}",
                 lambda: ops.softmax_logloss(x, labels, topk=5), bytes=3 * x.nbytes,
                 torch=torch_fwd)]


def sgd_case(net, rng, weight_shapes):
    params = [(_rand(rng, *s, scale=0.01), _rand(rng, *s), np.zeros(s, F32)) for s in weight_shapes]
    total = sum(int(np.prod(s)) for s in weight_shapes)

    def run():
        for w, g, v in params:
            ops.sgd_update(w, g, v, eps=0.01, mom=0.9, wc=0.0005)

    def torch_run():
        # The same rule as in-place tensor ops on copies (the copies keep the two runs apart).
        import torch
        tp = [tuple(torch.from_numpy(a.copy()) for a in p) for p in params]

        def step():
            for w, g, v in tp:
                v.mul_(0.9).add_(w, alpha=-0.0005 * 0.01).add_(g, alpha=-0.01)
                w.add_(v)
        return step

    # reads w, grad, v; writes w, v
    return [Case(net, "all params", "sgd update", f"{total / 1e6:.1f}M params", run,
                 bytes=5.0 * 4 * total, torch=torch_run)]


# ---- the two nets ------------------------------------------------------------------------------

def alexnet(rng, n=32):
    """The paper's net in one-GPU form: conv1 at 224 under cuda-convnet's rule gives 55x55."""
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
    cases += dropout_cases(a, "drop7", rng, (n, 4096))
    cases += fc_cases(a, "fc8", rng, n, 4096, 1000)
    cases += softmax_cases(a, "prob", rng, n, 1000)
    weights = [(96, 3, 11, 11), (256, 48, 5, 5), (384, 256, 3, 3), (384, 192, 3, 3),
               (256, 192, 3, 3), (4096, 9216), (4096, 4096), (1000, 4096)]
    cases += sgd_case(a, rng, weights + [(w[0],) for w in weights])  # + the biases
    return cases


def cifar10(rng, n=128):
    """layers-18pct.cfg; pool outputs 16, 8, 4 under cuda-convnet's pooling rule."""
    c = "cifar10"
    cases = []
    cases += conv_cases(c, "conv1", rng, n, 3, 32, 32, 5, pad=2)
    cases += pool_cases(c, "pool1", rng, (n, 32, 32, 32), "max")
    cases += relu_cases(c, "relu1", rng, (n, 32, 16, 16))      # pool1's neuron=relu
    cases += rnorm_cases(c, "rnorm1", rng, (n, 32, 16, 16))
    cases += conv_cases(c, "conv2", rng, n, 32, 16, 32, 5, pad=2)
    cases += pool_cases(c, "pool2", rng, (n, 32, 16, 16), "avg")
    cases += rnorm_cases(c, "rnorm2", rng, (n, 32, 8, 8))
    cases += conv_cases(c, "conv3", rng, n, 32, 8, 64, 5, pad=2)
    cases += relu_cases(c, "relu3", rng, (n, 64, 8, 8))
    cases += pool_cases(c, "pool3", rng, (n, 64, 8, 8), "avg")
    cases += fc_cases(c, "fc10", rng, n, 4 * 4 * 64, 10)
    cases += softmax_cases(c, "prob", rng, n, 10)
    weights = [(32, 3, 5, 5), (32, 32, 5, 5), (64, 32, 5, 5), (10, 1024)]
    cases += sgd_case(c, rng, weights + [(w[0],) for w in weights])
    # Not in the 18pct net: the other CIFAR-10 nets' ops at this net's shapes (11pct's cnorm-style
    # normalisation and local3 on 6x6x64 crops; eltsum/eltmax/concat for custom graphs).
    cases += rnorm_cases(c, "(other) cnorm", rng, (n, 32, 16, 16), kind="cnorm")
    cases += local_cases(c, "(11pct) local3", rng, n, 64, 6, 32, 3, pad=1)
    cases += combine_cases(c, "(other) elt", rng, (n, 64, 8, 8))
    cases += bias_cases(c, "(other) unshared bias", rng, (n, 32, 16, 16))
    return cases


def quick(rng):
    """A tiny set for smoke tests: one case of each kind at small shapes."""
    q = "quick"
    cases = []
    # stride 2 under cuda-convnet's rule with groups: the padding, overhang and group paths.
    cases += conv_cases(q, "conv", rng, 2, 4, 12, 8, 3, stride=2, pad=1, groups=2,
                        rule="cuda-convnet")
    cases += fc_cases(q, "fc", rng, 4, 32, 8)
    cases += local_cases(q, "local", rng, 2, 3, 6, 4, 3, pad=1)
    cases += relu_cases(q, "relu", rng, (2, 8, 6, 6))
    cases += lrn_cases(q, "lrn", rng, (2, 8, 6, 6))
    cases += rnorm_cases(q, "rnorm", rng, (2, 8, 6, 6))
    cases += rnorm_cases(q, "cnorm", rng, (2, 8, 6, 6), kind="cnorm")
    cases += pool_cases(q, "pool", rng, (2, 8, 7, 7), "max")
    cases += pool_cases(q, "pool", rng, (2, 8, 8, 8), "avg")
    cases += dropout_cases(q, "drop", rng, (4, 64))
    cases += combine_cases(q, "combine", rng, (2, 8, 3, 3))
    cases += bias_cases(q, "bias", rng, (2, 8, 3, 3))
    cases += softmax_cases(q, "prob", rng, 4, 10)
    cases += sgd_case(q, rng, [(8, 3, 3, 3), (8,)])
    return cases
