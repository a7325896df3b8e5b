"""Fully connected: the float64 reference and finite differences on 2-D inputs and on the shared
4-D odd shapes (read as (N, K) in C order), with and without bias.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA GEMM kernels (kernels/gemm.cuh,
fc.cu) on device tensors against the float64 reference and the CPU path under every math
precision: fp32 (CUDA cores) against FP32_REL_TOL, tf32 and bf16 (tensor cores, FP32
accumulation; plain FP32 below sm_80, which passes the same looser bounds) against TF32_REL_TOL
and BF16_REL_TOL, relative to the reference's largest magnitude. Outputs are poisoned with NaN
before each launch, so an element a kernel fails to write cannot pass; backward runs with beta=0
(gradients poisoned too: a kernel that reads them leaks NaN) and beta=1 (they start random and must
come back as old + gradient). M, N and K are not multiples of the 128x128x16 tiles (1, 7, 33, 130,
2000), K = 2000 and fc6 at batch 8 (9216 -> 4096) make the kernels split K. Also the math
precision setting itself.
"""

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from gpu_helpers import (BETAS, PRECISION_REL_TOL, PRECISIONS, cached, check_gradients, dev,
                         gradient_out, host, keyed_rng, normal_f32, poisoned, real_gpu_sized)
from helpers import (FP32_REL_TOL, ODD_SHAPES, assert_close, check_gpu_vs_cpu, check_op, f32,
                     gradcheck)
from reference import fc as ref

# (x shape, outputs M): a single sample, a single output, the 4-D odd shapes, and a wider GEMM.
CASES = [((1, 7), 3), ((5, 13), 1), ((33, 48), 10)] + [(s, 6) for s in ODD_SHAPES]


@pytest.mark.parametrize("xs, m", CASES,
                         ids=[f"x{'x'.join(map(str, c[0]))}-m{c[1]}" for c in CASES])
def test_fc_three_oracles(rng, xs, m):
    k = int(np.prod(xs[1:]))
    inputs = [rng.standard_normal(xs), rng.standard_normal((m, k)), rng.standard_normal(m)]
    y, (dx, _, _) = check_op(
        lambda x, w, b: ops.fc_forward(x, w, b),
        lambda x, w, b, dy: ops.fc_backward(x, w, dy),
        lambda x, w, b: ref.forward(x, w, b),
        lambda x, w, b, dy: ref.backward(x, w, dy),
        inputs, rng=rng, wrt=(0, 1, 2), names=("dx", "dw", "db"))
    assert y.shape == (xs[0], m)
    assert dx.shape == xs


@pytest.mark.parametrize("xs, m", CASES[:3] + CASES[-1:])
def test_fc_without_bias(rng, xs, m):
    k = int(np.prod(xs[1:]))
    x, w = f32(rng.standard_normal(xs), rng.standard_normal((m, k)))
    assert_close(ops.fc_forward(x, w), ref.forward(x, w, None), what="y without bias")


# Big enough that the CPU GEMM is split across threads (csrc/cpu/blas.cpp): by columns and by
# rows of each product's output, each with a transposed operand somewhere (forward: w^T; weight
# gradient: dy^T), with panel edges that are not multiples of 16.
SPLIT_CASES = [((70, 611), 257), ((301, 613), 41), ((301, 50), 700)]


@pytest.mark.parametrize("xs, m", SPLIT_CASES, ids=["columns", "rows-forward", "rows-backward"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fc_split_across_threads_matches_the_reference(rng, xs, m, dtype):
    x, w, b = rng.standard_normal(xs), rng.standard_normal((m, xs[1])), rng.standard_normal(m)
    dy = rng.standard_normal((xs[0], m))
    x, w, b, dy = (a.astype(dtype) for a in (x, w, b, dy))
    tol = FP32_REL_TOL if dtype == "float32" else 1e-12
    assert_close(ops.fc_forward(x, w, b), ref.forward(x, w, b), tol)
    for got, want in zip(ops.fc_backward(x, w, dy), ref.backward(x, w, dy)):
        assert_close(got, want, tol)


def test_fc_4d_input_is_read_in_c_order(rng):
    # (N, C, H, W) is the same layer as its (N, C*H*W) reshape, forward and backward.
    x4 = f32(rng.standard_normal((2, 3, 4, 5)))[0]
    w, b = f32(rng.standard_normal((6, 60)), rng.standard_normal(6))
    x2 = x4.reshape(2, 60)
    np.testing.assert_array_equal(ops.fc_forward(x4, w, b), ops.fc_forward(x2, w, b))
    dy = f32(rng.standard_normal((2, 6)))[0]
    dx4, dw4, db4 = ops.fc_backward(x4, w, dy)
    dx2, dw2, db2 = ops.fc_backward(x2, w, dy)
    assert dx4.shape == x4.shape
    np.testing.assert_array_equal(dx4.reshape(2, 60), dx2)
    np.testing.assert_array_equal(dw4, dw2)
    np.testing.assert_array_equal(db4, db2)


def test_fc_is_pytorch_convention():
    # w is (outputs, inputs): y[n, m] = sum_k x[n, k] w[m, k] + b[m].
    x = np.array([[1.0, 2.0]], np.float32)
    w = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
    np.testing.assert_array_equal(ops.fc_forward(x, w, np.array([0, 0, 10], np.float32)),
                                  [[1.0, 2.0, 13.0]])


def test_reference_backward_matches_its_forward(rng):
    gradcheck(lambda x, w, b: ref.forward(x, w, b), lambda x, w, b, dy: ref.backward(x, w, dy),
              [rng.standard_normal((3, 2, 2, 2)), rng.standard_normal((4, 8)),
               rng.standard_normal(4)], wrt=[0, 1, 2], rng=rng)


@pytest.mark.gpu
def test_fc_gpu_matches_cpu(rng):
    x, w = f32(rng.standard_normal((8, 48)), rng.standard_normal((10, 48)))
    check_gpu_vs_cpu("fc_forward", ops.fc_forward, None, [x, w])


# ---- the CUDA kernels ------------------------------------------------------------------------

# (x shape, outputs): K = prod(x.shape[1:]). Single rows and columns, sizes either side of the
# 128-wide tiles, a 4-D x read as (N, K), K = 2000 (split into K slices when the output is small),
# and fc6 at batch 8 (9216 -> 4096: a small output and a long K, also split).
FC_CASES = [((1, 7), 33), ((7, 33), 1), ((3, 130), 7), ((130, 9), 5), ((1, 1), 1),
            ((33, 129), 130), ((3, 5, 3, 4), 17), ((7, 2000), 130), ((8, 9216), 4096)]


def _alexnet_sized(case):
    """fc6 at batch 8 (9216 -> 4096)."""
    x_shape, outputs = case
    return int(np.prod(x_shape)) * outputs > 10_000_000


def _fc_id(case):
    xs, m = case
    return f"x{'x'.join(map(str, xs))}-m{m}"


def _fc_case(case):
    xs, m = case
    k = int(np.prod(xs[1:]))
    rng = keyed_rng("fc", xs, m)
    x, w = normal_f32(rng, xs), normal_f32(rng, (m, k))
    b, dy = normal_f32(rng, m), normal_f32(rng, (xs[0], m))
    y_ref = cached(("fc-y", xs, m), lambda: ref.forward(x, w, b))
    grads = cached(("fc-grad", xs, m), lambda: ref.backward(x, w, dy))
    return x, w, b, dy, y_ref, grads


@pytest.mark.gpu
@pytest.mark.parametrize("case", real_gpu_sized(FC_CASES, _alexnet_sized), ids=_fc_id)
def test_fc_forward(precision, case):
    x, w, b, _, y_ref, _ = _fc_case(case)
    tol = PRECISION_REL_TOL[precision]
    ty = poisoned(y_ref.shape)
    _core.fc_forward(dev(x), dev(w), dev(b), ty)
    y = host(ty)
    assert_close(y, y_ref, tol, what=f"fc y ({precision}) vs float64")
    assert_close(y, ops.fc_forward(x, w, b), tol, what=f"fc y ({precision}) vs CPU")
    # Without a bias.
    ty = poisoned(y_ref.shape)
    _core.fc_forward(dev(x), dev(w), None, ty)
    assert_close(host(ty), y_ref - b.astype(np.float64), tol, what="fc y without bias")


@pytest.mark.gpu
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("case", real_gpu_sized(FC_CASES, _alexnet_sized), ids=_fc_id)
def test_fc_backward(precision, case, beta):
    x, w, b, dy, _, refs = _fc_case(case)
    rng = keyed_rng("fc-old", case, beta)
    olds = [normal_f32(rng, a.shape) for a in refs]
    outs = [gradient_out(old, beta) for old in olds]
    _core.fc_backward(dev(x), dev(w), dev(dy), *outs, beta=beta)
    check_gradients(f"fc ({precision})", outs, refs, ops.fc_backward(x, w, dy), olds, beta,
                    PRECISION_REL_TOL[precision])


@pytest.mark.gpu
def test_fc_backward_skips_undefined_gradients():
    x, w, b, dy, _, (dx_ref, dw_ref, db_ref) = _fc_case(((3, 130), 7))
    tdw = poisoned(dw_ref.shape)
    _core.fc_backward(dev(x), dev(w), dev(dy), None, tdw, None)
    assert_close(host(tdw), dw_ref, FP32_REL_TOL, what="fc dw alone")
    tdx, tdb = poisoned(dx_ref.shape), poisoned(db_ref.shape)
    _core.fc_backward(dev(x), dev(w), dev(dy), tdx, None, tdb)
    assert_close(host(tdx), dx_ref, FP32_REL_TOL, what="fc dx without dw")
    assert_close(host(tdb), db_ref, FP32_REL_TOL, what="fc db without dw")


@pytest.mark.gpu
def test_math_precision_setting():
    previous = _core.get_math_precision()
    try:
        for name in PRECISIONS:
            _core.set_math_precision(name)
            assert _core.get_math_precision() == name
        with pytest.raises(ValueError, match="fp32"):
            _core.set_math_precision("fp16")
        assert _core.get_math_precision() == "bf16"  # unchanged by the rejected name
    finally:
        _core.set_math_precision(previous)
