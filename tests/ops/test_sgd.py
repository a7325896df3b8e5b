"""The paper's SGD update with momentum and weight decay, in place: against the float64 reference
over several steps, on the shared odd shapes, with a hand-computed step and the in-place
contract.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernels on device tensors, reached
through their bindings (csrc/bindings/dropout_softmax_sgd.cpp), against the CPU path and the
float64 reference, in place: an element the kernel skips keeps its old value, far from the expected
one. Sizes with and without a remainder mod 4, up to 4.1M parameters (many blocks); and on a GPU, a
CPU argument to the GPU op is refused.
"""

import numpy as np
import pytest

import convnet.ops as ops
from gpu_helpers import call, check, cpu, dev, gpu_only, host
from helpers import FP64_REL_TOL, HAND_REL_TOL, ODD_SHAPES, assert_close, check_gpu_vs_cpu, f32
from reference import sgd as ref

HYPER = [dict(eps=0.01, mom=0.9, wc=0.0005), dict(eps=0.1, mom=0.0, wc=0.0),
         dict(eps=0.001, mom=0.5, wc=0.01)]


@pytest.mark.parametrize("hyper", HYPER, ids=lambda h: ",".join(f"{k}={v}" for k, v in h.items()))
@pytest.mark.parametrize("shape", [(1,), (7, 13), (96, 3, 11, 11)] + ODD_SHAPES,
                         ids=lambda s: "x".join(map(str, s)))
def test_sgd_matches_reference_over_several_steps(rng, shape, hyper):
    w, v = f32(rng.standard_normal(shape), rng.standard_normal(shape) * 0.1)
    w_ref, v_ref = w.astype(np.float64), v.astype(np.float64)
    w_buf, v_buf = w, v
    for step in range(5):
        grad = f32(rng.standard_normal(shape))[0]
        assert ops.sgd_update(w, grad, v, **hyper) is None
        w_ref, v_ref = ref.update(w_ref, grad, v_ref, **hyper)
        # In place: the same buffers hold the new values after every step.
        assert w is w_buf and v is v_buf
        assert_close(w, w_ref, what=f"w after step {step + 1}")
        assert_close(v, v_ref, what=f"v after step {step + 1}")


def test_sgd_is_the_papers_rule():
    w = np.array([1.0, -2.0], np.float32)
    v = np.array([0.5, 0.0], np.float32)
    g = np.array([10.0, 1.0], np.float32)
    grad_before = g.copy()
    ops.sgd_update(w, g, v, eps=0.1, mom=0.9, wc=0.5)
    # v = 0.9 v - 0.5 * 0.1 w - 0.1 g;  w = w + v (the new v)
    assert_close(v, [0.45 - 0.05 - 1.0, 0.0 + 0.1 - 0.1], HAND_REL_TOL)
    assert_close(w, [1.0 - 0.6, -2.0], HAND_REL_TOL)
    np.testing.assert_array_equal(g, grad_before)  # grad is read only
    # A second step uses the stored momentum.
    ops.sgd_update(w, np.zeros(2, np.float32), v, eps=0.1, mom=0.9, wc=0.0)
    assert_close(v, [-0.54, 0.0], HAND_REL_TOL)
    assert_close(w, [-0.14, -2.0], HAND_REL_TOL)


def test_sgd_float64_in_place(rng):
    w, g, v = rng.standard_normal(5), rng.standard_normal(5), rng.standard_normal(5)
    w_ref, v_ref = ref.update(w, g, v, eps=0.2, mom=0.7, wc=0.1)
    ops.sgd_update(w, g, v, eps=0.2, mom=0.7, wc=0.1)
    assert_close(w, w_ref, FP64_REL_TOL)
    assert_close(v, v_ref, FP64_REL_TOL)


def test_sgd_needs_writeable_separate_buffers():
    w = np.zeros(4, np.float32)
    ro = np.zeros(4, np.float32)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="sgd_update: v .*writeable"):
        ops.sgd_update(w, np.zeros(4, np.float32), ro, eps=0.1, mom=0.9, wc=0.0)
    with pytest.raises(ValueError, match="sgd_update: w .*writeable"):
        ops.sgd_update(ro, np.zeros(4, np.float32), w, eps=0.1, mom=0.9, wc=0.0)
    with pytest.raises(ValueError, match="sgd_update: w and v"):
        ops.sgd_update(w, np.zeros(4, np.float32), w, eps=0.1, mom=0.9, wc=0.0)


def test_reference_update():
    w, v = ref.update(np.array([2.0]), np.array([1.0]), np.array([3.0]), eps=0.5, mom=0.1, wc=0.2)
    # v = 0.1*3 - 0.2*0.5*2 - 0.5*1 = -0.4;  w = 2 - 0.4
    np.testing.assert_allclose(v, [-0.4])
    np.testing.assert_allclose(w, [1.6])


@pytest.mark.gpu
def test_sgd_gpu_matches_cpu(rng):
    w, g, v = f32(rng.standard_normal(100), rng.standard_normal(100), rng.standard_normal(100))
    check_gpu_vs_cpu("sgd_update", lambda w, g, v: ref.update(w, g, v, 0.01, 0.9, 0.0005), None,
                     [w, g, v])


# ---- the CUDA kernel -------------------------------------------------------------------------

# Sizes with and without a remainder mod 4; the last is 4.1M parameters, many blocks.
GPU_SHAPES = [(1,), (5,), (3, 7, 11), (96, 3, 11, 11), (1000, 4097)]


@pytest.mark.gpu
@pytest.mark.parametrize("shape", GPU_SHAPES)
def test_sgd_update(shape, rng):
    w, g, v = (rng.standard_normal(shape).astype(np.float32) for _ in range(3))
    hyper = dict(eps=0.01, mom=0.9, wc=0.0005)
    tw, tg, tv = dev(w), dev(g), dev(v)
    call("sgd_update", tw, tg, tv, **hyper)
    w_cpu, v_cpu = w.copy(), v.copy()
    ops.sgd_update(w_cpu, g, v_cpu, **hyper)
    w_ref, v_ref = ref.update(w, g, v, **hyper)
    # In place: an element the kernel skips keeps its old value, far from the expected one.
    check(host(tw), w_cpu, w_ref, "w")
    check(host(tv), v_cpu, v_ref, "v")


@pytest.mark.gpu
@gpu_only
def test_gpu_ops_reject_a_cpu_argument(rng):
    w = rng.standard_normal((3, 5)).astype(np.float32)
    with pytest.raises(ValueError, match="cuda:0|cpu"):
        call("sgd_update", dev(w), cpu(w), dev(w), eps=0.01, mom=0.9, wc=0.0)
