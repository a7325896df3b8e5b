"""eltsum, eltmax, concat and bias_add against the reference and finite differences.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernels of eltsum, eltmax, the scale
op, bias_add and concat on device tensors, reached through their bindings
(csrc/bindings/neuron_eltwise.cpp, which also run the CPU path on CPU tensors where convnet.ops
has no numpy form: beta, the scale op), against the CPU path and the float64 reference. Fresh
random inputs of odd shapes: batch 1, sizes that are not multiples of 4 (the float4 paths' scalar
tails), more inputs than one eltwise launch takes (32), more rows than one grid dimension (65535),
ties (every tied input of eltmax receives the gradient). Outputs are poisoned with NaN before each
launch, so an element a kernel fails to write cannot pass; backward passes run with beta 0
(overwrite: the poisoned gradient must not leak in) and beta 1 (accumulate).
"""

import numpy as np
import pytest

import convnet.ops as ops
from gpu_helpers import (BETAS, accumulated, call, check, cpu, dev, exact, host, old_gradient,
                         poisoned)
from helpers import FP32_REL_TOL, GPU_VS_CPU_REL_TOL, assert_close, f32, gradcheck
from reference import eltwise as ref


@pytest.mark.parametrize("shape, coeffs", [((1, 5), [1.0]), ((2, 3, 4, 5), [1.0, -1.0]),
                                           ((3, 7), [0.5, 2.0, -0.25])])
def test_eltsum(rng, shape, coeffs):
    xs = f32(*[rng.standard_normal(shape) for _ in coeffs])
    assert_close(ops.eltsum_forward(xs, coeffs), ref.eltsum(xs, coeffs), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    for got, c in zip(ops.eltsum_backward(dy, coeffs), coeffs):
        assert_close(got, c * dy.astype(np.float64), what="dx")
    assert_close(ops.eltsum_forward(xs), ref.eltsum(xs, [1.0] * len(xs)), what="default coeffs")
    gradcheck(lambda *a: ops.eltsum_forward(list(a), coeffs),
              lambda *a: tuple(ops.eltsum_backward(a[-1], coeffs)),
              [rng.standard_normal(shape) for _ in coeffs], wrt=list(range(len(coeffs))), rng=rng)


@pytest.mark.parametrize("shape, inputs", [((2, 3, 4, 5), 2), ((5, 9), 3)])
def test_eltmax(rng, shape, inputs):
    xs = f32(*[rng.standard_normal(shape) for _ in range(inputs)])
    y = ops.eltmax_forward(xs)
    assert_close(y, ref.eltmax(xs), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    for got, want in zip(ops.eltmax_backward(xs, y, dy), ref.eltmax_backward(xs, dy)):
        assert_close(got, want, what="dx")
    gradcheck(lambda *a: ops.eltmax_forward(list(a)),
              lambda *a: tuple(ops.eltmax_backward(list(a[:-1]), ops.eltmax_forward(list(a[:-1])),
                                                   a[-1])),
              [rng.standard_normal(shape) for _ in range(inputs)], wrt=list(range(inputs)),
              rng=rng)


def test_eltmax_ties_reach_every_input():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    b = np.array([1.0, 5.0, 0.0], np.float32)
    y = ops.eltmax_forward([a, b])
    da, db = ops.eltmax_backward([a, b], y, np.ones(3, np.float32))
    np.testing.assert_array_equal(da, [1, 0, 1])
    np.testing.assert_array_equal(db, [1, 1, 0])


@pytest.mark.parametrize("shapes", [[(2, 3)], [(1, 4), (1, 2, 3, 1)], [(3, 5), (3, 2), (3, 4, 2)]])
def test_concat(rng, shapes):
    xs = f32(*[rng.standard_normal(s) for s in shapes])
    y = ops.concat_forward(xs)
    assert_close(y, ref.concat(xs), what="y")
    dy = f32(rng.standard_normal(y.shape))[0]
    dxs = ops.concat_backward(dy, shapes)
    for got, want in zip(dxs, ref.concat_backward(dy, shapes)):
        assert got.shape == want.shape
        assert_close(got, want, what="dx")
    gradcheck(lambda *a: ops.concat_forward(list(a)),
              lambda *a: tuple(ops.concat_backward(a[-1], shapes)),
              [rng.standard_normal(s) for s in shapes], wrt=list(range(len(shapes))), rng=rng)


def test_bad_arguments():
    a = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match="eltsum_forward: xs\\[1\\] must have the shape"):
        ops.eltsum_forward([a, np.zeros((2, 4), np.float32)])
    with pytest.raises(ValueError, match="eltsum_forward: 2 inputs need 2 coeffs"):
        ops.eltsum_forward([a, a], [1.0])
    with pytest.raises(ValueError, match="eltmax_forward: xs must be a non-empty list"):
        ops.eltmax_forward([])
    with pytest.raises(ValueError, match="concat_forward: xs\\[1\\] must have 2 samples"):
        ops.concat_forward([a, np.zeros((3, 3), np.float32)])
    with pytest.raises(ValueError, match="concat_backward: shapes hold 5 features per sample but dy has 6"):
        ops.concat_backward(np.zeros((2, 6), np.float32), [(2, 3), (2, 2)])


@pytest.mark.parametrize("shape", [(1, 3), (2, 5, 3, 7), (4, 17, 6, 5)])
def test_bias_add(rng, shape):
    x, b = f32(rng.standard_normal(shape), rng.standard_normal(shape[1:]))
    assert_close(ops.bias_add_forward(x, b), ref.bias_add(x, b), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    assert_close(ops.bias_add_backward(dy), ref.bias_add_backward(dy), what="db")
    gradcheck(lambda x, b: ops.bias_add_forward(x, b),
              lambda x, b, dy: (dy.copy(), ops.bias_add_backward(dy)),
              [rng.standard_normal(shape), rng.standard_normal(shape[1:])], wrt=[0, 1], rng=rng)


def test_bias_add_errors():
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match="bias_add_forward: b must have the shape"):
        ops.bias_add_forward(x, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="b is float64"):
        ops.bias_add_forward(x, np.zeros((3, 4)))


# ---- the CUDA kernels: eltsum, eltmax, scale -------------------------------------------------

# Sums over tens of thousands of float32 terms in two different orders: each order is ~1e-5
# relative from the exact sum, so the two may differ by a few 1e-5.
LONG_SUM_REL_TOL = FP32_REL_TOL
GPU_SHAPES = [(1,), (3, 5), (1, 3, 7, 5), (2, 17, 13, 11), (3, 96, 13, 13)]
# 40 inputs: more than one launch's 32, so the second chunk continues from y.
GPU_COUNTS = [1, 2, 3, 40]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("count", GPU_COUNTS)
def test_eltsum_forward(shape, count, rng):
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]
    coeffs = [float(c) for c in rng.uniform(-2, 2, count)]
    ty = poisoned(shape)
    call("eltsum_forward", [dev(x) for x in xs], coeffs, ty)
    check(host(ty), ops.eltsum_forward(xs, coeffs), ref.eltsum(xs, coeffs), "y")


@pytest.mark.gpu
@pytest.mark.parametrize("count, alias", [(2, 0), (3, 2), (40, 39)])
def test_eltsum_forward_in_place(count, alias, rng):
    # conv and fc layers sum partial results with y = xs[0]; with more than 32 inputs the input
    # that is y must be read before the first chunk overwrites it.
    shape = (2, 17, 13, 11)
    xs = [rng.standard_normal(shape).astype(np.float32) for _ in range(count)]
    coeffs = [float(c) for c in rng.uniform(-2, 2, count)]
    txs = [dev(x) for x in xs]
    call("eltsum_forward", txs, coeffs, txs[alias])
    check(host(txs[alias]), ops.eltsum_forward(xs, coeffs), ref.eltsum(xs, coeffs),
          "y in place")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("count", [1, 3, 40])
@pytest.mark.parametrize("beta", BETAS)
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


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("beta", BETAS)
def test_scale(shape, beta, rng):
    x = rng.standard_normal(shape).astype(np.float32)
    old = old_gradient(shape, beta, rng)
    tout, cout = dev(old), cpu(old)
    call("eltwise_scale", dev(x), -0.7, tout, beta=beta)
    call("eltwise_scale", cpu(x), -0.7, cout, beta=beta)
    check(host(tout), cout.numpy(), accumulated(old, beta, -0.7 * x.astype(np.float64)), "out")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
@pytest.mark.parametrize("count", GPU_COUNTS)
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
def test_eltmax_gpu(shape, count, ties, rng):
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
    exact(y, ref.eltmax(xs).astype(np.float32), "y vs reference")

    dy = rng.standard_normal(shape).astype(np.float32)
    refs = ref.eltmax_backward(xs, dy)
    for beta in BETAS:
        olds = [old_gradient(shape, beta, rng) for _ in range(count)]
        tdxs, cdxs = [dev(o) for o in olds], [cpu(o) for o in olds]
        call("eltmax_backward", txs, ty, dev(dy), tdxs, beta=beta)
        call("eltmax_backward", [cpu(x) for x in xs], cpu(y), cpu(dy), cdxs, beta=beta)
        for i in range(count):
            check(host(tdxs[i]), cdxs[i].numpy(), accumulated(olds[i], beta, refs[i]),
                  f"dx[{i}] beta={beta}")
            if beta == 0:
                exact(host(tdxs[i]), cdxs[i].numpy(), f"dx[{i}] vs CPU")


# ---- the CUDA kernels: bias_add --------------------------------------------------------------

# (N, *bias shape): per-sample sizes not divisible by 4 (105, 270, 17, 1) take the scalar path,
# 280 and 2400 the float4 one.
GPU_BIAS_SHAPES = [(1, 3, 7, 5), (2, 5, 6, 9), (3, 4, 10, 7), (128, 96, 5, 5), (7, 17), (5, 1)]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_BIAS_SHAPES + [(66000, 3)])  # more rows than grid.y's 65535
def test_bias_add_forward(shape, rng):
    y0 = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(shape[1:]).astype(np.float32)
    ty, cy = dev(y0), cpu(y0)
    call("bias_add_forward", ty, dev(b))
    call("bias_add_forward", cy, cpu(b))
    # One float32 add per element on both sides; an element left unwritten keeps y0 and fails.
    exact(host(ty), cy.numpy(), "y vs CPU")
    assert_close(host(ty), y0.astype(np.float64) + b, FP32_REL_TOL, "y vs reference")


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_BIAS_SHAPES + [(20000, 7, 2)])
@pytest.mark.parametrize("beta", BETAS)
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


# ---- the CUDA kernels: concat ----------------------------------------------------------------

GPU_CONCAT_CASES = [
    [(5, 8), (5, 4, 2, 2), (5, 12)],       # widths and offsets multiples of 4: float4 copies
    [(1, 3, 7, 5), (1, 17), (1, 2)],        # batch 1, odd widths
    [(3, 3), (3, 1), (3, 96, 2, 2)],        # a wide part at offset 4 after two narrow ones
    [(2, 48, 5, 4), (2, 5, 6, 9)],
    [(70000, 3), (70000, 1)],               # more rows than grid.y's 65535
]


@pytest.mark.gpu
@pytest.mark.parametrize("shapes", GPU_CONCAT_CASES, ids=lambda s: "+".join(map(str, s)))
def test_concat_gpu(shapes, rng):
    n = shapes[0][0]
    xs = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    total = sum(int(np.prod(s[1:])) for s in shapes)
    ty = poisoned((n, total))
    call("concat_forward", [dev(x) for x in xs], ty)
    exact(host(ty), ops.concat_forward(xs), "y vs CPU")
    exact(host(ty), ref.concat(xs).astype(np.float32), "y vs reference")

    dy = rng.standard_normal((n, total)).astype(np.float32)
    refs = ref.concat_backward(dy, shapes)
    for beta in BETAS:
        olds = [old_gradient(s, beta, rng) for s in shapes]
        tdxs, cdxs = [dev(o) for o in olds], [cpu(o) for o in olds]
        call("concat_backward", dev(dy), tdxs, beta=beta)
        call("concat_backward", cpu(dy), cdxs, beta=beta)
        for i in range(len(shapes)):
            check(host(tdxs[i]), cdxs[i].numpy(), accumulated(olds[i], beta, refs[i]),
                  f"dx[{i}] beta={beta}")
            if beta == 0:
                exact(host(tdxs[i]), refs[i].astype(np.float32), f"dx[{i}] vs reference")
