"""The ops composed into small nets, as the layer graph will compose them: the paper's AlexNet
shapes flow through every stage, and a tiny net built from every op family passes an end-to-end
finite-difference gradient check (chain rule across op boundaries, layouts included)."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import gradcheck

P = dict(seed=11, step=3)


def tiny_forward(x, w1, b1, w2, b2, labels):
    """conv(groups 2, cuda-convnet rule) -> relu -> LRN -> overlapping max-pool -> fc -> tanh ->
    dropout (inverted) -> fc -> softmax log-loss. Returns every intermediate."""
    a = ops.conv_forward(x, w1, b1, stride=2, padding=1, groups=2, rule="cuda-convnet")
    r = ops.neuron_forward(a, "relu")
    n = ops.lrn_forward(r, size=3, alpha=0.2, beta=0.75, k=2.0)
    p = ops.pool_forward(n, mode="max", size=3, stride=2)
    f = ops.fc_forward(p, w2, b2)
    t = ops.neuron_forward(f, "tanh[1.7,0.6]")
    d = ops.dropout_forward(t, p=0.3, inverted=True, **P)
    return a, r, n, p, f, t, d


def tiny_loss(x, w1, b1, w2, b2, w3, labels):
    *_, d = tiny_forward(x, w1, b1, w2, b2, labels)
    return ops.softmax_logloss(ops.fc_forward(d, w3), labels, topk=2).loss


def tiny_backward(x, w1, b1, w2, b2, w3, labels):
    a, r, n, p, f, t, d = tiny_forward(x, w1, b1, w2, b2, labels)
    out = ops.softmax_logloss(ops.fc_forward(d, w3), labels, topk=2)
    dd, dw3, _ = ops.fc_backward(d, w3, out.dx)
    dt = ops.dropout_backward(dd, p=0.3, inverted=True, **P)
    df = ops.neuron_backward(f, t, dt, "tanh[1.7,0.6]")
    dp, dw2, db2 = ops.fc_backward(p, w2, df)
    dn = ops.pool_backward(n, p, dp, mode="max", size=3, stride=2)
    dr = ops.lrn_backward(r, n, dn, size=3, alpha=0.2, beta=0.75, k=2.0)
    da = ops.neuron_backward(a, r, dr, "relu")
    dx, dw1, db1 = ops.conv_backward(x, w1, da, stride=2, padding=1, groups=2, rule="cuda-convnet")
    return dx, dw1, db1, dw2, db2, dw3


def test_tiny_net_gradcheck(rng):
    labels = np.array([1, 4, 0])
    x = rng.standard_normal((3, 4, 9, 8))
    w1 = rng.standard_normal((6, 2, 3, 3)) * 0.5
    b1 = rng.standard_normal(6) * 0.1
    pooled = ops.pool_forward(
        ops.conv_forward(x, w1, stride=2, padding=1, groups=2, rule="cuda-convnet"),
        mode="max", size=3, stride=2)
    k = int(np.prod(pooled.shape[1:]))
    w2, b2 = rng.standard_normal((7, k)) * 0.3, rng.standard_normal(7) * 0.1
    w3 = rng.standard_normal((5, 7))
    gradcheck(lambda *a: np.array([tiny_loss(*a, labels)]),
              lambda *a: tuple(g * a[-1][0] for g in tiny_backward(*a[:-1], labels)),
              [x, w1, b1, w2, b2, w3], wrt=[0, 1, 2, 3, 4, 5], rng=rng)


@pytest.mark.slow
def test_alexnet_shapes_flow_through_every_op(rng):
    """One image through the paper's one-GPU AlexNet, forward and backward (about 2 s)."""
    x = rng.standard_normal((1, 3, 224, 224)).astype(np.float32)
    convs = [  # filters, channels/groups, kernel, stride, pad, groups, pool after
        (96, 3, 11, 4, 0, 1, True), (256, 48, 5, 1, 2, 2, True), (384, 256, 3, 1, 1, 1, False),
        (384, 192, 3, 1, 1, 2, False), (256, 192, 3, 1, 1, 2, True)]
    shapes, h = [], x
    for i, (f, c, k, s, pad, g, pool) in enumerate(convs):
        w = (rng.standard_normal((f, c, k, k)) * 0.01).astype(np.float32)
        h = ops.neuron_forward(ops.conv_forward(h, w, np.ones(f, np.float32), stride=s,
                                                padding=pad, groups=g, rule="cuda-convnet"),
                               "relu")
        shapes.append(h.shape[1:])
        if i < 2:
            h = ops.lrn_forward(h)
        if pool:
            h = ops.pool_forward(h, mode="max", size=3, stride=2)
            shapes.append(h.shape[1:])
    assert shapes == [(96, 55, 55), (96, 27, 27), (256, 27, 27), (256, 13, 13), (384, 13, 13),
                      (384, 13, 13), (256, 13, 13), (256, 6, 6)]
    for m in (4096, 4096):
        w = (rng.standard_normal((m, int(np.prod(h.shape[1:])))) * 0.01).astype(np.float32)
        h = ops.dropout_forward(ops.neuron_forward(ops.fc_forward(h, w), "relu"), **P)
    logits = ops.fc_forward(h, (rng.standard_normal((1000, 4096)) * 0.01).astype(np.float32))
    out = ops.softmax_logloss(logits, [7])
    assert logits.shape == (1, 1000) and np.isfinite(out.loss)
    dh, dw, _ = ops.fc_backward(h, np.zeros((1000, 4096), np.float32), out.dx)
    assert dh.shape == h.shape and np.isfinite(dw).all()
