"""The CUDA kernels of dropout, softmax (log-loss, cost.logreg), SGD, eltsum / eltmax / scale,
bias_add and concat against the CPU path and the float64 references (runs only where a GPU is).

Fresh random inputs of odd shapes: batch 1, sizes that are not multiples of 4 (the float4 paths'
scalar tails), widths on both sides of the softmax's warp-per-row limit (128), more inputs than
one eltwise launch takes (32), more rows than one grid dimension (65535). Outputs are poisoned
with NaN before each launch, so an element a kernel fails to write cannot pass; backward passes
run with beta = 0 (overwrite: the poisoned gradient must not leak in) and beta = 1 (accumulate).
The device tensors reach the ops through their bindings (csrc/bindings/neuron_eltwise.cpp and
dropout_softmax_sgd.cpp), which take CPU tensors too: those run the CPU path where convnet.ops has
no numpy form (beta, cost.logreg, the scale op). They are looked up at call time, so this file
collects with a build that lacks them.
"""

import numpy as np
import pytest

import convnet
import convnet.ops as ops
from convnet import _core
from gpu_helpers import FP32_REL_TOL, assert_close, dev, gpu_only, host, poisoned
from reference import dropout as ref_dropout
from reference import eltwise as ref_eltwise
from reference import sgd as ref_sgd
from reference import softmax as ref_softmax

pytestmark = [pytest.mark.gpu]

# GPU against CPU, both float32: other summation orders (tree reductions, split batch sums),
# fused multiply-adds, and a few ulp between CUDA's expf/logf and glibc's.
GPU_VS_CPU_REL_TOL = 1e-5
# Sums over tens of thousands of float32 terms in two different orders: each order is ~1e-5
# relative from the exact sum, so the two may differ by a few 1e-5.
LONG_SUM_REL_TOL = FP32_REL_TOL


def call(name, *args, **kwargs):
    return getattr(_core, name)(*args, **kwargs)


def cpu(a):
    """A float32 CPU tensor (a copy): the CPU path through the same tensor bindings."""
    return convnet.Tensor.from_numpy(np.ascontiguousarray(a, dtype=np.float32), "cpu")


def old_gradient(shape, beta, rng):
    """What a gradient buffer holds before a backward pass: NaN when it is overwritten (beta 0),
    random values to accumulate onto otherwise."""
    if beta == 0:
        return np.full(shape, np.nan, dtype=np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def accumulated(old, beta, grad):
    """The float64 expectation of beta*old + grad (old ignored when beta is 0)."""
    return grad if beta == 0 else beta * np.asarray(old, np.float64) + grad


def exact(got, want, what):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert not np.isnan(got.astype(np.float64)).any(), f"{what}: NaN in the GPU result"
    np.testing.assert_array_equal(got, want, err_msg=what)


def check(got, cpu_want, ref_want, what, cpu_tol=GPU_VS_CPU_REL_TOL, ref_tol=FP32_REL_TOL):
    assert_close(got, cpu_want, cpu_tol, f"{what} vs CPU")
    assert_close(got, ref_want, ref_tol, f"{what} vs float64 reference")


def scalar_close(got, want, tol, what):
    assert np.isfinite(got), f"{what}: {got}"
    assert abs(got - want) <= tol * max(abs(want), 1e-30), f"{what}: {got!r} != {want!r}"


# ---- dropout ----------------------------------------------------------------------------------

DROPOUT_KEYS = [dict(p=0.5, seed=7, step=9, layer=1),
                dict(p=0.2, seed=2**40 + 3, step=2**33 + 1, layer=5)]  # words above 32 bits


@pytest.mark.parametrize("n", [1, 3, 4, 5, 105, 3003, 100_003])
@pytest.mark.parametrize("key", DROPOUT_KEYS, ids=["p0.5", "p0.2-wide-key"])
def test_dropout_mask_bit_exact(n, key):
    # The point of the shared counter-based generator: the GPU's mask is the CPU's, bit for bit.
    # The mask goes into a buffer of canary bytes (0xAB, neither 0 nor 1) rounded up to whole
    # words, so an unwritten byte, or one written past n, shows.
    words = (n + 3) // 4
    storage = dev(np.full(words * 4, 0xAB, dtype=np.uint8).view(np.float32))
    call("dropout_mask", storage, n, key["p"], key["seed"], key["step"], key["layer"])
    got = host(storage).view(np.uint8)
    exact(got[:n], ops.dropout_mask((n,), **key), "GPU mask vs CPU mask")
    exact(got[:n], ref_dropout.mask((n,), **key), "GPU mask vs reference mask")
    assert (got[n:] == 0xAB).all(), "the mask kernel wrote past its n bytes"


DROPOUT_SHAPES = [(1,), (3, 5), (1, 3, 7, 5), (2, 5, 6, 9), (2, 17, 13, 11), (3, 96, 13, 13)]
DROPOUT_MODES = [(True, False), (True, True), (False, False), (False, True)]


@pytest.mark.parametrize("shape", DROPOUT_SHAPES)
@pytest.mark.parametrize("train, inverted", DROPOUT_MODES,
                         ids=["train", "train-inverted", "test", "test-inverted"])
def test_dropout_forward_backward(shape, train, inverted, rng):
    key = dict(p=0.3, seed=11, step=12345, layer=3)
    kw = dict(**key, train=train, inverted=inverted)
    args = (key["p"], key["seed"], key["step"], key["layer"], train, inverted)
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)

    ty = poisoned(shape)
    call("dropout_forward", dev(x), ty, *args)
    y = host(ty)
    # One float32 multiply by the same factor on both sides: equal bits.
    exact(y, ops.dropout_forward(x, **kw), "y vs CPU")
    assert_close(y, ref_dropout.forward(x, **kw), FP32_REL_TOL, "y vs reference")
    if train:
        exact(y != 0, ref_dropout.mask(shape, **key) == 1, "kept elements vs reference mask")

    tdx = poisoned(shape)
    call("dropout_backward", dev(dy), tdx, *args, beta=0.0)
    exact(host(tdx), ops.dropout_backward(dy, **kw), "dx vs CPU")
    assert_close(host(tdx), ref_dropout.backward(dy, **kw), FP32_REL_TOL, "dx vs reference")

    old = old_gradient(shape, 1.0, rng)
    tdx, cdx = dev(old), cpu(old)
    call("dropout_backward", dev(dy), tdx, *args, beta=1.0)
    call("dropout_backward", cpu(dy), cdx, *args, beta=1.0)
    check(host(tdx), cdx.numpy(), accumulated(old, 1.0, ref_dropout.backward(dy, **kw)),
          "dx accumulated")


# ---- softmax, log-loss, cost.logreg -------------------------------------------------------------

# (N, K): one class; CIFAR's 10 and ImageNet's 1000 at batch 128; both sides of the warp-per-row
# limit (128); a row longer than a block's stride several times over.
SOFTMAX_SHAPES = [(1, 1), (1, 10), (3, 7), (128, 10), (5, 33), (7, 128), (5, 129), (128, 1000),
                  (2, 4099)]


@pytest.mark.parametrize("shape", SOFTMAX_SHAPES)
def test_softmax_forward(shape, rng):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    tp = poisoned(shape)
    call("softmax_forward", dev(x), tp)
    check(host(tp), ops.softmax_forward(x), ref_softmax.forward(x), "probs")


@pytest.mark.parametrize("shape", SOFTMAX_SHAPES)
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_softmax_backward(shape, beta, rng):
    y = ops.softmax_forward((rng.standard_normal(shape) * 3).astype(np.float32))
    dy = rng.standard_normal(shape).astype(np.float32)
    old = old_gradient(shape, beta, rng)
    tdx, cdx = dev(old), cpu(old)
    call("softmax_backward", dev(y), dev(dy), tdx, beta=beta)
    call("softmax_backward", cpu(y), cpu(dy), cdx, beta=beta)
    check(host(tdx), cdx.numpy(), accumulated(old, beta, ref_softmax.backward(y, dy)), "dx")


@pytest.mark.parametrize("shape", SOFTMAX_SHAPES)
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
    probs_ref, loss_ref, dx_ref, top1_ref, topk_ref = ref_softmax.logloss(x, labels, topk)
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


@pytest.mark.parametrize("shape", SOFTMAX_SHAPES)
@pytest.mark.parametrize("beta", [0.0, 1.0])
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


# ---- SGD --------------------------------------------------------------------------------------

# Sizes with and without a remainder mod 4; the last is 4.1M parameters, many blocks.
SGD_SHAPES = [(1,), (5,), (3, 7, 11), (96, 3, 11, 11), (1000, 4097)]


@pytest.mark.parametrize("shape", SGD_SHAPES)
def test_sgd_update(shape, rng):
    w, g, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    hyper = dict(eps=0.01, mom=0.9, wc=0.0005)
    tw, tg, tv = dev(w), dev(g), dev(v)
    call("sgd_update", tw, tg, tv, **hyper)
    w_cpu, v_cpu = w.copy(), v.copy()
    ops.sgd_update(w_cpu, g, v_cpu, **hyper)
    w_ref, v_ref = ref_sgd.update(w, g, v, **hyper)
    # In place: an element the kernel skips keeps its old value, far from the expected one.
    check(host(tw), w_cpu, w_ref, "w")
    check(host(tv), v_cpu, v_ref, "v")


@gpu_only
def test_gpu_ops_reject_a_cpu_argument(rng):
    w = rng.standard_normal((3, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="cuda:0|cpu"):
        call("sgd_update", dev(w), cpu(w), dev(w), eps=0.01, mom=0.9, wc=0.0)


# ---- eltsum, eltmax, scale --------------------------------------------------------------------

ELT_SHAPES = [(1,), (3, 5), (1, 3, 7, 5), (2, 17, 13, 11), (3, 96, 13, 13)]
# 40 inputs: more than one launch's 32, so the second chunk continues from y.
ELT_COUNTS = [1, 2, 3, 40]


@pytest.mark.parametrize("shape", ELT_SHAPES)
@pytest.mark.parametrize("count", ELT_COUNTS)
def test_eltsum_forward(shape, count, rng):
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]
    coeffs = [float(c) for c in rng.uniform(-2, 2, count)]
    ty = poisoned(shape)
    call("eltsum_forward", [dev(x) for x in xs], coeffs, ty)
    check(host(ty), ops.eltsum_forward(xs, coeffs), ref_eltwise.eltsum(xs, coeffs), "y")


@pytest.mark.parametrize("count, alias", [(2, 0), (3, 2), (40, 39)])
def test_eltsum_forward_in_place(count, alias, rng):
    # conv and fc layers sum partial results with y = xs[0]; with more than 32 inputs the input
    # that is y must be read before the first chunk overwrites it.
    shape = (2, 17, 13, 11)
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]
    coeffs = [float(c) for c in rng.uniform(-2, 2, count)]
    txs = [dev(x) for x in xs]
    call("eltsum_forward", txs, coeffs, txs[alias])
    check(host(txs[alias]), ops.eltsum_forward(xs, coeffs), ref_eltwise.eltsum(xs, coeffs),
          "y in place")


@pytest.mark.parametrize("shape", ELT_SHAPES)
@pytest.mark.parametrize("count", [1, 3, 40])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_eltsum_backward(shape, count, beta, rng):
    dy = rng.standard_normal(shape).astype(np.float32)
    coeffs = [float(c) for c in rng.uniform(-2, 2, count)]
    olds = [old_gradient(shape, beta, rng) for _ in range(count)]
    tdxs, cdxs = [dev(o) for o in olds], [cpu(o) for o in olds]
    call("eltsum_backward", dev(dy), coeffs, tdxs, beta=beta)
    call("eltsum_backward", cpu(dy), coeffs, cdxs, beta=beta)
    for i, c in enumerate(coeffs):
        check(host(tdxs[i]), cdxs[i].numpy(),
              accumulated(olds[i], beta, c * dy.astype(np.float64)), f"dx[{i}]")


@pytest.mark.parametrize("shape", ELT_SHAPES)
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_scale(shape, beta, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    old = old_gradient(shape, beta, rng)
    tout, cout = dev(old), cpu(old)
    call("eltwise_scale", dev(x), -0.7, tout, beta=beta)
    call("eltwise_scale", cpu(x), -0.7, cout, beta=beta)
    check(host(tout), cout.numpy(), accumulated(old, beta, -0.7 * x.astype(np.float64)), "out")


@pytest.mark.parametrize("shape", ELT_SHAPES)
@pytest.mark.parametrize("count", ELT_COUNTS)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_eltmax(shape, count, ties, rng):
    if ties:  # small integers: ties everywhere, and every tied input receives the gradient
        xs = [rng.integers(-3, 4, shape).astype(np.float32) for _ in range(count)]
    else:
        xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]
    txs = [dev(x) for x in xs]
    ty = poisoned(shape)
    call("eltmax_forward", txs, ty)
    y = host(ty)
    # Comparisons and selections only: the same bits as the CPU and the reference.
    exact(y, ops.eltmax_forward(xs), "y vs CPU")
    exact(y, ref_eltwise.eltmax(xs).astype(np.float32), "y vs reference")

    dy = rng.standard_normal(shape).astype(np.float32)
    refs = ref_eltwise.eltmax_backward(xs, dy)
    for beta in (0.0, 1.0):
        olds = [old_gradient(shape, beta, rng) for _ in range(count)]
        tdxs, cdxs = [dev(o) for o in olds], [cpu(o) for o in olds]
        call("eltmax_backward", txs, ty, dev(dy), tdxs, beta=beta)
        call("eltmax_backward", [cpu(x) for x in xs], cpu(y), cpu(dy), cdxs, beta=beta)
        for i in range(count):
            check(host(tdxs[i]), cdxs[i].numpy(), accumulated(olds[i], beta, refs[i]),
                  f"dx[{i}] beta={beta}")
            if beta == 0:
                exact(host(tdxs[i]), cdxs[i].numpy(), f"dx[{i}] vs CPU")


# ---- bias_add ---------------------------------------------------------------------------------

# (N, *bias shape): per-sample sizes not divisible by 4 (105, 270, 17, 1) take the scalar path,
# 280 and 2400 the float4 one.
BIAS_SHAPES = [(1, 3, 7, 5), (2, 5, 6, 9), (3, 4, 10, 7), (128, 96, 5, 5), (7, 17), (5, 1)]


@pytest.mark.parametrize("shape", BIAS_SHAPES + [(66000, 3)])  # more rows than grid.y's 65535
def test_bias_add_forward(shape, rng):
    y0 = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[1:]).astype(np.float32)
    ty, cy = dev(y0), cpu(y0)
    call("bias_add_forward", ty, dev(b))
    call("bias_add_forward", cy, cpu(b))
    # One float32 add per element on both sides; an element left unwritten keeps y0 and fails.
    exact(host(ty), cy.numpy(), "y vs CPU")
    assert_close(host(ty), y0.astype(np.float64) + b, FP32_REL_TOL, "y vs reference")


@pytest.mark.parametrize("shape", BIAS_SHAPES + [(20000, 7, 2)])
@pytest.mark.parametrize("beta", [0.0, 1.0])
def test_bias_add_backward(shape, beta, rng):
    dy = rng.standard_normal(shape).astype(np.float32)
    old = old_gradient(shape[1:], beta, rng)
    tdb, cdb = dev(old), cpu(old)
    call("bias_add_backward", dev(dy), tdb, beta=beta)
    call("bias_add_backward", cpu(dy), cdb, beta=beta)
    cpu_tol = GPU_VS_CPU_REL_TOL if shape[0] <= 1000 else LONG_SUM_REL_TOL
    check(host(tdb), cdb.numpy(), accumulated(old, beta, dy.astype(np.float64).sum(axis=0)),
          "db", cpu_tol=cpu_tol)
    # Deterministic: a fixed summation order, so a second run gives the same bits.
    tdb2 = dev(old)
    call("bias_add_backward", dev(dy), tdb2, beta=beta)
    exact(host(tdb2), host(tdb), "db, second run")


# ---- concat -----------------------------------------------------------------------------------

CONCAT_CASES = [
    [(5, 8), (5, 4, 2, 2), (5, 12)],       # widths and offsets multiples of 4: float4 copies
    [(1, 3, 7, 5), (1, 17), (1, 2)],        # batch 1, odd widths
    [(3, 3), (3, 1), (3, 96, 2, 2)],        # a wide part at offset 4 after two narrow ones
    [(2, 48, 5, 4), (2, 5, 6, 9)],
    [(70000, 3), (70000, 1)],               # more rows than grid.y's 65535
]


@pytest.mark.parametrize("shapes", CONCAT_CASES, ids=lambda s: "+".join(map(str, s)))
def test_concat(shapes, rng):
    n = shapes[0][0]
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    total = sum(int(np.prod(s[1:])) for s in shapes)
    ty = poisoned((n, total))
    call("concat_forward", [dev(x) for x in xs], ty)
    exact(host(ty), ops.concat_forward(xs), "y vs CPU")
    exact(host(ty), ref_eltwise.concat(xs).astype(np.float32), "y vs reference")

    dy = rng.standard_normal((n, total)).astype(np.float32)
    refs = ref_eltwise.concat_backward(dy, shapes)
    for beta in (0.0, 1.0):
        olds = [old_gradient(s, beta, rng) for s in shapes]
        tdxs, cdxs = [dev(o) for o in olds], [cpu(o) for o in olds]
        call("concat_backward", dev(dy), tdxs, beta=beta)
        call("concat_backward", cpu(dy), cdxs, beta=beta)
        for i in range(len(shapes)):
            check(host(tdxs[i]), cdxs[i].numpy(), accumulated(olds[i], beta, refs[i]),
                  f"dx[{i}] beta={beta}")
            if beta == 0:
                exact(host(tdxs[i]), refs[i].astype(np.float32), f"dx[{i}] vs reference")
