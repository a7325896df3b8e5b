"""Cross-map response normalisation, the paper's form (lrn) and cuda-convnet's cmrnorm (centred
and blocked): the float64 reference and finite differences on the shared odd shapes, cmrnorm ==
lrn for odd sizes, and hand-computed windows for even sizes and blocks.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernel (kernels/lrn.cu) on device
tensors against the CPU path and the float64 reference. Every output is poisoned with NaN before
its launch, so an element the kernel fails to write cannot pass; backward runs with beta_acc=0 (dx
poisoned too: a kernel that reads it leaks NaN) and beta_acc=1 (dx starts random and must come
back as dx + gradient). Shapes are odd on purpose: batch 1, non-square maps, channel counts below,
near and above the window sizes, AlexNet's 96 and 256 channels (which the kernel cuts into channel
segments).
"""

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from gpu_helpers import (BETAS, check_forward_backward, dev, forward_backward, host, params_id,
                         poisoned, shape_id)
from helpers import (FP64_REL_TOL, GPU_VS_CPU_REL_TOL, HAND_REL_TOL, ODD_SHAPES, assert_close,
                     check_gpu_vs_cpu, check_op, f32, gradcheck)
from reference import lrn as ref

# (2, 7, 17, 19): 323 pixels a plane, more than the CPU backward's block of 256 and not a
# multiple; (1, 6, 65, 67): 4355, more than the forward's block of 4096.
SHAPES = ODD_SHAPES + [(1, 5, 1, 1), (2, 7, 17, 19), (1, 6, 65, 67)]
# A large alpha makes the normalisation matter (with the paper's 1e-4 the output is almost
# x / k^beta and a wrong window would hide under the tolerance); the paper's values are kept too.
PAPER = [dict(size=5, alpha=1e-4, beta=0.75, k=2.0), dict(size=3, alpha=0.3, beta=0.75, k=1.0),
         dict(size=4, alpha=0.2, beta=0.6, k=2.0), dict(size=7, alpha=0.5, beta=1.3, k=0.5),
         dict(size=1, alpha=0.4, beta=0.75, k=1.0)]
CMR = [dict(size=5, scale=0.0005, pow=0.75, min_div=2.0),
       dict(size=5, scale=2.0, pow=0.75),
       dict(size=4, scale=1.0, pow=0.75, min_div=1.0),
       dict(size=2, scale=0.8, pow=0.9, min_div=1.5),
       dict(size=3, scale=1.5, pow=0.5, min_div=1.0, blocked=True),
       dict(size=4, scale=1.2, pow=0.75, min_div=2.0, blocked=True),
       dict(size=64, scale=3.0, pow=0.75, min_div=1.0)]  # wider than every channel count


def _id(params):
    return ",".join(f"{k}={v}" for k, v in params.items())


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("params", PAPER, ids=_id)
def test_paper_lrn_three_oracles(rng, shape, params):
    check_op(lambda x: ops.lrn_forward(x, **params),
             lambda x, dy: (ops.lrn_backward(x, ops.lrn_forward(x, **params), dy, **params),),
             lambda x: ref.paper_forward(x, **params),
             lambda x, dy: (ref.paper_backward(x, dy, **params),),
             [rng.standard_normal(shape) * 3], rng=rng, names=("dx",),
             grad_inputs=[rng.standard_normal((2, shape[1], 2, 3)) * 3])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("params", CMR, ids=_id)
def test_cmrnorm_three_oracles(rng, shape, params):
    check_op(lambda x: ops.cmrnorm_forward(x, **params),
             lambda x, dy: (ops.cmrnorm_backward(x, ops.cmrnorm_forward(x, **params), dy,
                                                 **params),),
             lambda x: ref.cmrnorm_forward(x, **params),
             lambda x, dy: (ref.cmrnorm_backward(x, dy, **params),),
             [rng.standard_normal(shape) * 3], rng=rng, names=("dx",),
             grad_inputs=[rng.standard_normal((2, shape[1], 2, 3)) * 3])


@pytest.mark.parametrize("size", [1, 3, 5, 7, 9])
@pytest.mark.parametrize("channels", [3, 5, 48])
def test_cmrnorm_odd_size_equals_paper_lrn(rng, size, channels):
    # AlexNet's layer in cuda-convnet's terms is cmrnorm size=5, scale=0.0005, pow=0.75,
    # minDiv=2: the paper's n=5, alpha=1e-4, beta=0.75, k=2. For odd sizes the windows coincide.
    x = f32(rng.standard_normal((2, channels, 3, 2)) * 10)[0]
    dy = f32(rng.standard_normal(x.shape))[0]
    scale, pow, min_div = 0.7 * size, 0.75, 2.0
    a = ops.cmrnorm_forward(x, size=size, scale=scale, pow=pow, min_div=min_div)
    b = ops.lrn_forward(x, size=size, alpha=scale / size, beta=pow, k=min_div)
    assert_close(a, b, HAND_REL_TOL, what="cmrnorm vs lrn forward")
    da = ops.cmrnorm_backward(x, a, dy, size=size, scale=scale, pow=pow, min_div=min_div)
    db = ops.lrn_backward(x, b, dy, size=size, alpha=scale / size, beta=pow, k=min_div)
    assert_close(da, db, what="cmrnorm vs lrn backward")
    # The references agree too, independently of the library.
    x64 = x.astype(np.float64)
    assert_close(ref.cmrnorm_forward(x64, size, scale, pow, min_div),
                 ref.paper_forward(x64, size, scale / size, pow, min_div), FP64_REL_TOL,
                 what="the references")


def test_alexnet_parameters_match_the_paper(rng):
    x = f32(rng.standard_normal((2, 16, 4, 3)) * 10)[0]
    # lrn's defaults are the paper's.
    assert_close(ops.cmrnorm_forward(x, size=5, scale=0.0005, pow=0.75, min_div=2.0),
                 ops.lrn_forward(x), HAND_REL_TOL, what="AlexNet's cmrnorm vs the paper's lrn")


def test_even_size_windows():
    # size 4 at map 2 of 6: the paper's formula sums maps 0..4 (i - 2 .. i + 2, five maps),
    # cmrnorm sums maps 0..3 (f - 2 .. f + 1, four maps).
    x = np.zeros((1, 6, 1, 1), np.float32)
    x[0, 2], x[0, 4], x[0, 0] = 1.0, 10.0, 2.0
    paper = ops.lrn_forward(x, size=4, alpha=1.0, beta=1.0, k=1.0)
    cmr = ops.cmrnorm_forward(x, size=4, scale=4.0, pow=1.0, min_div=1.0)
    assert_close(paper[0, 2, 0, 0], 1.0 / (1 + 4 + 1 + 100), HAND_REL_TOL)
    assert_close(cmr[0, 2, 0, 0], 1.0 / (1 + 4 + 1), HAND_REL_TOL)
    # At map 5 the cmrnorm window 3..6 is clipped to 3..5; map 4 holds the 10.
    assert_close(cmr[0, 4, 0, 0], 10.0 / (1 + 100 + 1), HAND_REL_TOL)
    # size 2: maps f-1 and f.
    cmr2 = ops.cmrnorm_forward(x, size=2, scale=2.0, pow=1.0, min_div=1.0)
    assert_close(cmr2[0, 2, 0, 0], 1.0 / (1 + 0 + 1), HAND_REL_TOL)
    assert_close(cmr2[0, 0, 0, 0], 2.0 / (1 + 4), HAND_REL_TOL)


def test_blocked_windows_stay_in_their_block():
    # size 3 over 7 maps: blocks [0, 3), [3, 6), [6, 7) (the last clipped).
    x = np.zeros((1, 7, 1, 1), np.float32)
    x[0, 2], x[0, 3], x[0, 6] = 1.0, 5.0, 2.0
    y = ops.cmrnorm_forward(x, size=3, scale=3.0, pow=1.0, min_div=1.0, blocked=True)
    assert_close(y[0, 2, 0, 0], 1.0 / (1 + 1), HAND_REL_TOL)   # map 3 not in it
    assert_close(y[0, 3, 0, 0], 5.0 / (1 + 25), HAND_REL_TOL)  # map 2 not in it
    assert_close(y[0, 6, 0, 0], 2.0 / (1 + 4), HAND_REL_TOL)   # alone in its block
    centred = ops.cmrnorm_forward(x, size=3, scale=3.0, pow=1.0, min_div=1.0)
    assert_close(centred[0, 2, 0, 0], 1.0 / (1 + 1 + 25), HAND_REL_TOL)


def test_reference_windows():
    assert list(ref.paper_window(0, 6, 4)) == [0, 1, 2]
    assert list(ref.paper_window(3, 6, 4)) == [1, 2, 3, 4, 5]
    assert list(ref.cmrnorm_window(3, 6, 4, False)) == [1, 2, 3, 4]
    assert list(ref.cmrnorm_window(0, 6, 4, False)) == [0, 1]
    assert list(ref.cmrnorm_window(4, 6, 4, True)) == [4, 5]
    assert list(ref.cmrnorm_window(3, 6, 4, True)) == [0, 1, 2, 3]


@pytest.mark.parametrize("blocked", [False, True])
def test_reference_backward_matches_its_forward(rng, blocked):
    params = dict(size=4, scale=2.0, pow=0.8, min_div=1.5, blocked=blocked)
    gradcheck(lambda x: ref.cmrnorm_forward(x, **params),
              lambda x, dy: (ref.cmrnorm_backward(x, dy, **params),),
              [rng.standard_normal((2, 7, 2, 2)) * 2], wrt=[0], rng=rng)
    gradcheck(lambda x: ref.paper_forward(x, 4, 0.5, 0.8, 1.5),
              lambda x, dy: (ref.paper_backward(x, dy, 4, 0.5, 0.8, 1.5),),
              [rng.standard_normal((2, 7, 2, 2)) * 2], wrt=[0], rng=rng)


@pytest.mark.gpu
def test_lrn_gpu_matches_cpu(rng):
    x = f32(rng.standard_normal((2, 48, 5, 4)))[0]
    check_gpu_vs_cpu("cmrnorm_forward",
                     lambda x: ops.cmrnorm_forward(x, size=5, scale=0.0005, pow=0.75, min_div=2.0),
                     None, [x])


# ---- the CUDA kernel -------------------------------------------------------------------------

# (size, pre, blocked, alpha, beta, k): AlexNet's layer (the paper's n=5, alpha=1e-4, k=2), strong
# normalisations (a wrong window must not hide under the tolerance), even sizes, windows entirely
# ahead of or behind the map, pow's general path (beta != 0.75), the largest size with a tuned
# kernel (9), sizes on the naive kernel (10, 64: wider than every channel count), blocked windows.
GPU_PARAMS = [(5, 2, False, 1e-4, 0.75, 2.0), (5, 2, False, 0.1, 0.75, 1.0),
              (3, 1, False, 0.3, 0.75, 1.0), (4, 2, False, 0.2, 0.6, 2.0),
              (4, 0, False, 0.2, 0.75, 1.0), (7, 6, False, 0.1, 1.3, 0.5),
              (1, 0, False, 0.4, 0.75, 1.0), (9, 4, False, 0.05, 0.75, 1.0),
              (10, 5, False, 0.05, 0.75, 1.0), (64, 32, False, 3.0 / 64, 0.75, 1.0),
              (3, 1, True, 0.5, 0.5, 1.0), (4, 2, True, 0.3, 0.75, 2.0)]
GPU_SHAPES = [(1, 3, 5, 7), (2, 5, 7, 3), (3, 17, 6, 11), (2, 96, 13, 9)]


def _windows(channels, size, pre, blocked):
    """The maps each map's sum runs over, from the reference where it has the rule (pre =
    size // 2, cmrnorm's), else [f - pre, f - pre + size) clipped."""
    if pre == size // 2:
        return [ref.cmrnorm_window(f, channels, size, blocked) for f in range(channels)]
    assert not blocked
    return [range(max(f - pre, 0), min(f - pre + size, channels)) for f in range(channels)]


def _check_gpu(rng, shape, params, beta_acc):
    size, pre, blocked, alpha, beta, k = params
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    dx0 = rng.standard_normal(shape).astype(np.float32)

    gpu, cpu_results = forward_backward(_core.lrn_forward, _core.lrn_backward, x, shape, dy, dx0,
                                        params, beta_acc)

    windows = _windows(shape[1], size, pre, blocked)
    y_ref = ref.forward(x, windows, alpha, beta, k)
    dx_ref = ref.backward(x, dy, windows, alpha, beta, k)

    check_forward_backward(gpu, cpu_results, (y_ref, dx_ref), dx0, beta_acc)


@pytest.mark.gpu
@pytest.mark.parametrize("beta_acc", BETAS)
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=shape_id)
@pytest.mark.parametrize("params", GPU_PARAMS, ids=params_id)
def test_lrn_gpu(rng, params, shape, beta_acc):
    _check_gpu(rng, shape, params, beta_acc)


@pytest.mark.gpu
@pytest.mark.parametrize("shape", [(2, 96, 55, 55), (3, 256, 27, 27)], ids=shape_id)
def test_lrn_gpu_alexnet_shapes(rng, shape):
    _check_gpu(rng, shape, (5, 2, False, 1e-4, 0.75, 2.0), 1.0)


@pytest.mark.gpu
def test_lrn_gpu_paper_and_cmrnorm_forms(rng):
    """The numpy wrappers' parameter mappings reach the same kernels: the paper's LRN(n=5) and
    cuda-convnet's cmrnorm(size=5, scale=0.0005, minDiv=2) are AlexNet's layer."""
    x = (rng.standard_normal((2, 48, 7, 6)) * 3).astype(np.float32)
    ty = poisoned(x.shape)
    _core.lrn_forward(dev(x), ty, 5, 2, False, 0.0005 / 5, 0.75, 2.0)
    assert_close(host(ty), ops.lrn_forward(x, size=5), GPU_VS_CPU_REL_TOL, "paper LRN")
    assert_close(host(ty), ops.cmrnorm_forward(x, size=5, scale=0.0005, pow=0.75, min_div=2.0),
                 GPU_VS_CPU_REL_TOL, "cmrnorm")
