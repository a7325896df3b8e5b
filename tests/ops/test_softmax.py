"""Softmax, its backward pass, and the log-loss with top-1 / top-k error counts: the float64
reference and finite differences, the ties rule, and labels of every integer dtype and float.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernels on device tensors, reached
through their bindings (csrc/bindings/dropout_softmax_sgd.cpp), against the CPU path and the
float64 reference (cost.logreg, which convnet.ops has no numpy form of, against the CPU binding and
a formula here): softmax, its backward, the fused log-loss and cost.logreg, on one class, CIFAR's
10 and ImageNet's 1000 at batch 128, widths on both sides of the warp-per-row limit (128) and a row
longer than a block's stride several times over. Outputs are poisoned with NaN before each launch,
so an element the kernel fails to write cannot pass; backward passes run with beta 0 (overwrite:
the poisoned gradient must not leak in) and beta 1 (accumulate).
"""

import numpy as np
import pytest

import convnet.ops as ops
from gpu_helpers import (BETAS, accumulated, call, check, cpu, dev, exact, host, old_gradient,
                         poisoned, scalar_close)
from helpers import (FP32_REL_TOL, GPU_VS_CPU_REL_TOL, HAND_REL_TOL, ODD_SHAPES, assert_close,
                     check_gpu_vs_cpu, check_op, f32, gradcheck)
from reference import softmax as ref

# (N, K): a single sample, a single class, ImageNet's 1000 classes, and (N, C) of the odd shapes.
SHAPES = [(1, 2), (3, 1), (7, 1000)] + [s[:2] for s in ODD_SHAPES]
LABEL_DTYPES = [np.int64, np.int32, np.int16, np.int8, np.uint8, np.uint16, np.uint32,
                np.float32, np.float64]
# The summed loss is a float32 reduction over at most a few dozen samples: as for FP32_REL_TOL.
LOSS_REL_TOL = 1e-5


def _our_probs(x):
    # softmax_backward takes y, not x: the reference backward gets the very y ours got (checked
    # against the reference forward in the same call), so the comparison measures the op, not
    # the float32 rounding of y amplified by the formula.
    return ops.softmax_forward(np.asarray(x, np.float32)).astype(np.float64)


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_softmax_three_oracles(rng, shape):
    # Logits of scale 2, rows far from one-hot: on a nearly one-hot row dy_i - sum(dy * y) cancels
    # to a few digits for the dominant class, and correctly rounded float32 alone is then ~1e-4
    # off relative to max|dx|. test_softmax_subtracts_the_max covers the extreme rows.
    probs, _ = check_op(lambda x: ops.softmax_forward(x),
                        lambda x, dy: (ops.softmax_backward(ops.softmax_forward(x), dy),),
                        lambda x: ref.forward(x),
                        lambda x, dy: (ref.backward(_our_probs(x), dy),),
                        [rng.standard_normal(shape) * 2], rng=rng, names=("dx",),
                        grad_inputs=[rng.standard_normal((shape[0], min(shape[1], 12))) * 3])
    assert_close(probs.sum(axis=1), np.ones(shape[0]), FP32_REL_TOL, what="row sums")


def test_softmax_subtracts_the_max():
    x = np.array([[1000.0, 1000.0, 0.0], [-1000.0, -1000.0, -1000.0]], np.float32)
    assert_close(ops.softmax_forward(x), [[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]], HAND_REL_TOL)


@pytest.mark.parametrize("shape, topk", [((1, 2), 1), ((9, 10), 5), ((6, 1000), 5), ((4, 3), 2),
                                         ((5, 4), 4), ((3, 5), 9)] +
                         [(s[:2], 2) for s in ODD_SHAPES])
def test_logloss_matches_reference(rng, shape, topk):
    x = f32(rng.standard_normal(shape) * 3)[0]
    labels = rng.integers(0, shape[1], size=shape[0])
    out = ops.softmax_logloss(x, labels, topk=topk)
    probs, loss, dx, top1, topk_errors = ref.logloss(x, labels, topk)
    assert_close(out.probs, probs, what="probs")
    assert isinstance(out.loss, float)
    assert_close(out.loss, loss, LOSS_REL_TOL, what="loss")
    assert_close(out.dx, dx, what="dx")
    assert (out.top1_errors, out.topk_errors) == (top1, topk_errors)
    assert out.dx.dtype == np.float32 and out.probs.dtype == np.float32


@pytest.mark.parametrize("dtype", LABEL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_logloss_accepts_every_integer_dtype_and_float_labels(rng, dtype):
    x = f32(rng.standard_normal((6, 7)) * 2)[0]
    labels = np.array([0, 6, 3, 3, 1, 5])
    want = ops.softmax_logloss(x, labels, topk=3)
    got = ops.softmax_logloss(x, labels.astype(dtype), topk=3)
    assert got.loss == want.loss
    np.testing.assert_array_equal(got.dx, want.dx)
    assert (got.top1_errors, got.topk_errors) == (want.top1_errors, want.topk_errors)
    _, loss, dx, top1, topk = ref.logloss(x, labels.astype(dtype), 3)
    assert_close(got.loss, loss, LOSS_REL_TOL, what="loss")
    assert (got.top1_errors, got.topk_errors) == (top1, topk)


def test_logloss_gradcheck(rng):
    # dx is the gradient of the summed loss; finite differences of our float64 loss.
    labels = np.array([2, 0, 4, 4])
    gradcheck(lambda x: np.array([ops.softmax_logloss(x, labels).loss]),
              lambda x, dy: (ops.softmax_logloss(x, labels).dx * dy[0],),
              [rng.standard_normal((4, 5)) * 2], wrt=[0], rng=rng)


def test_topk_counts_and_the_ties_rule():
    # A sample is correct at k when fewer than k classes are strictly more probable than its label.
    p = np.array([[0.5, 0.3, 0.2, 0.0],    # label 0: the max -> correct at 1 and 2
                  [0.5, 0.3, 0.2, 0.0],    # label 2: two classes above -> wrong at 1 and 2
                  [0.4, 0.4, 0.2, 0.0],    # label 1: tied for the max, none above -> correct
                  [0.1, 0.6, 0.3, 0.0],    # label 2: one above -> wrong at 1, correct at 2
                  [0.3, 0.3, 0.3, 0.1],    # label 2: three-way tie for the max -> correct
                  [0.4, 0.2, 0.2, 0.2]])   # label 3: tied with two, one above -> correct at 2
    p[:, 3] = np.where(p[:, 3] == 0, 1e-6, p[:, 3])
    x = np.log(p).astype(np.float32)
    x[:, :] -= 0  # same logits for tied classes, so float32 keeps the ties exact
    assert x[2, 0] == x[2, 1] and x[4, 0] == x[4, 2] and x[5, 1] == x[5, 3]
    labels = np.array([0, 2, 1, 2, 2, 3], dtype=np.float32)  # float, as cuda-convnet stores them
    out = ops.softmax_logloss(x, labels, topk=2)
    assert out.top1_errors == 3  # samples 1, 3 and 5
    assert out.topk_errors == 1  # sample 1
    _, _, _, top1, topk = ref.logloss(x, labels, 2)
    assert (top1, topk) == (3, 1)
    assert ops.softmax_logloss(x, labels, topk=3).topk_errors == 0


def test_all_equal_logits_are_never_an_error():
    x = np.zeros((3, 10), np.float32)
    out = ops.softmax_logloss(x, np.array([0, 5, 9]), topk=1)
    assert (out.top1_errors, out.topk_errors) == (0, 0)
    assert_close(out.loss, 3 * np.log(10), HAND_REL_TOL, what="loss")


def test_logloss_stays_finite_when_a_probability_underflows():
    x = np.array([[0.0, 200.0]], np.float32)
    out = ops.softmax_logloss(x, [0], topk=1)
    assert_close(out.loss, 200.0, HAND_REL_TOL, what="loss")
    assert np.isfinite(out.dx).all()
    assert_close(out.dx, [[-1.0, 1.0]], HAND_REL_TOL, what="dx")


def test_reference_backward_matches_its_forward(rng):
    gradcheck(lambda x: ref.forward(x), lambda x, dy: (ref.backward(ref.forward(x), dy),),
              [rng.standard_normal((3, 6))], wrt=[0], rng=rng)
    labels = np.array([1, 5, 0])
    gradcheck(lambda x: np.array([ref.logloss(x, labels, 5)[1]]),
              lambda x, dy: (ref.logloss(x, labels, 5)[2] * dy[0],),
              [rng.standard_normal((3, 6))], wrt=[0], rng=rng)


@pytest.mark.gpu
def test_softmax_gpu_matches_cpu(rng):
    x = f32(rng.standard_normal((8, 1000)))[0]
    check_gpu_vs_cpu("softmax_forward", ops.softmax_forward, None, [x])


# ---- the CUDA kernels ------------------------------------------------------------------------

# (N, K): one class; CIFAR's 10 and ImageNet's 1000 at batch 128; both sides of the warp-per-row
# limit (128); a row longer than a block's stride several times over.
GPU_SHAPES = [(1, 1), (1, 10), (3, 7), (128, 10), (5, 33), (7, 128), (5, 129), (128, 1000),
              (2, 4099)]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
def test_softmax_forward(shape, rng):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    tp = poisoned(shape)
    call("softmax_forward", dev(x), tp)
    check(host(tp), ops.softmax_forward(x), ref.forward(x), "probs")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("beta", BETAS)
def test_softmax_backward(shape, beta, rng):
    y = ops.softmax_forward((rng.standard_normal(shape) * 3).astype(np.float32))
    dy = rng.standard_normal(shape).astype(np.float32)
    old = old_gradient(shape, beta, rng)
    tdx, cdx = dev(old), cpu(old)
    call("softmax_backward", dev(y), dev(dy), tdx, beta=beta)
    call("softmax_backward", cpu(y), cpu(dy), cdx, beta=beta)
    check(host(tdx), cdx.numpy(), accumulated(old, beta, ref.backward(y, dy)), "dx")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_softmax_logloss(shape, ties, rng):
    n, k = shape
    if ties:  # small integers: classes tied with the label are not "more probable"
        x = rng.integers(-2, 3, shape).astype(np.float32)
    else:
        x = (rng.standard_normal(shape) * 3).astype(np.float32)
    labels = rng.integers(0, k, n).astype(np.int32)
    topk = min(5, k)

    tp, tdx = poisoned(shape), poisoned(shape)
    loss, top1, topk_errors = call("softmax_logloss", dev(x), labels, tp, tdx, topk)
    want = ops.softmax_logloss(x, labels, topk=topk)
    probs_ref, loss_ref, dx_ref, top1_ref, topk_ref = ref.logloss(x, labels, topk)
    check(host(tp), want.probs, probs_ref, "probs")
    check(host(tdx), want.dx, dx_ref, "dx")
    scalar_close(loss, want.loss, GPU_VS_CPU_REL_TOL, "loss vs CPU")
    scalar_close(loss, loss_ref, FP32_REL_TOL, "loss vs reference")
    assert (top1, topk_errors) == (want.top1_errors, want.topk_errors) == (top1_ref, topk_ref)

    # Evaluation only (no dx), and the device reduction is deterministic: the same bits again.
    tp2 = poisoned(shape)
    assert call("softmax_logloss", dev(x), labels, tp2, None, topk) == \
        (loss, top1, topk_errors)
    exact(host(tp2), host(tp), "probs without dx")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("beta", BETAS)
def test_logreg_cost(shape, beta, rng):
    n, k = shape
    probs = ops.softmax_forward((rng.standard_normal(shape) * 2).astype(np.float32))
    labels = rng.integers(0, k, n).astype(np.int32)
    topk, scale = min(5, k), 0.37
    old = old_gradient(shape, beta, rng)

    tdp, cdp = dev(old), cpu(old)
    got = call("logreg_cost", dev(probs), labels, tdp, scale, topk, beta=beta)
    want = call("logreg_cost", cpu(probs), labels, cdp, scale, topk, beta=beta)

    p = probs.astype(np.float64)
    rows = np.arange(n)
    p_label = p[rows, labels]
    above = (p > p_label[:, None]).sum(axis=1)
    grad = np.zeros(shape)
    grad[rows, labels] = -scale / p_label
    check(host(tdp), cdp.numpy(), accumulated(old, beta, grad), "dprobs")
    scalar_close(got[0], want[0], GPU_VS_CPU_REL_TOL, "loss vs CPU")
    scalar_close(got[0], -np.log(p_label).sum(), FP32_REL_TOL, "loss vs reference")
    assert got[1:] == want[1:] == (int((above >= 1).sum()), int((above >= topk).sum()))

    # The forward form (no gradient) returns the same totals.
    assert call("logreg_cost", dev(probs), labels, None, scale, topk) == got
