"""Max and average pooling with cuda-convnet's geometry: the float64 reference and finite
differences (skipping max-pool near-ties) on the shared odd shapes and windows, AlexNet's
overlapping 3/2 sizes, negative starts, explicit output counts, the avg divisor, and ties.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernels (kernels/pool.cu) on device
tensors against the CPU path and the float64 reference. Every output is poisoned with NaN before
its launch, so an element the kernel fails to write cannot pass; backward runs with beta_acc=0 (dx
poisoned too: a kernel that reads it leaks NaN) and beta_acc=1 (dx starts random and must come
back as dx + gradient). Shapes are odd on purpose (batch 1, non-square maps, AlexNet's 96 and 256
channels), windows overhang the far edge or start before the near one, and max-pool ties all
receive the gradient.
"""

import itertools

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from gpu_helpers import BETAS, check_forward_backward, forward_backward, shape_id
from helpers import (HAND_REL_TOL, ODD_SHAPES, ODD_WINDOWS, assert_close, check_gpu_vs_cpu,
                     check_op, f32, gradcheck, pair)
from reference import pool as ref

# (size, stride, start, outputs), each an int or an (h, w) pair: the shared windows with their
# padding as a negative start, then pooling's own: overlapping 3/2, non-square, mixed starts,
# explicit output counts (also past the natural count, so windows are clipped at the far side).
WINDOWS = [(k, s, (-p[0], -p[1]), 0) for k, s, p in ODD_WINDOWS] + [
    (3, 2, 0, 0), ((3, 2), (2, 1), 0, 0), (3, 2, -1, 0), ((2, 3), (3, 2), (1, -1), 0),
    (3, 2, 0, (2, 3)), (3, 3, 0, 0), ((4, 1), (1, 2), 0, 0), (2, 2, -1, (4, 3)),
]


def _geometry(xs, size, stride, start, outputs):
    sz, st, sa, so = pair(size), pair(stride), pair(start), pair(outputs)
    oh = ref.output_size(xs[2], sz[0], st[0], sa[0], so[0])
    ow = ref.output_size(xs[3], sz[1], st[1], sa[1], so[1])
    empty = (ref.has_empty_window(xs[2], oh, sz[0], st[0], sa[0])
             or ref.has_empty_window(xs[3], ow, sz[1], st[1], sa[1]))
    return sz, st, sa, oh, ow, empty


# The shared shapes are all at most 16 wide, which the CPU pools one row per vector (AVX-512); a
# wider one takes the other paths (16 outputs of a row per vector, or the portable loops).
POOL_SHAPES = ODD_SHAPES + [(1, 3, 6, 37)]
CASES, EMPTY_CASES = [], []
for _xs, _win in itertools.product(POOL_SHAPES, WINDOWS):
    (EMPTY_CASES if _geometry(_xs, *_win)[-1] else CASES).append((_xs, _win))


def _id(case):
    xs, (size, stride, start, outputs) = case
    return f"x{'x'.join(map(str, xs))}-size{size}-stride{stride}-start{start}-out{outputs}"


@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_pool_three_oracles(rng, mode, case):
    xs, (size, stride, start, outputs) = case
    sz, st, sa, oh, ow, _ = _geometry(xs, size, stride, start, outputs)
    kw = dict(mode=mode, size=size, stride=stride, start=start, outputs=outputs)

    def kink(inputs, which, i, step):
        return mode == "max" and ref.near_tie(inputs[0], i, step, sz, st, sa, oh, ow)

    y, _ = check_op(lambda x: ops.pool_forward(x, **kw),
                    lambda x, dy: (ops.pool_backward(x, ops.pool_forward(x, **kw), dy, **kw),),
                    lambda x: ref.forward(x, mode, sz, st, sa, oh, ow),
                    lambda x, dy: (ref.backward(x, dy, mode, sz, st, sa),),
                    [rng.standard_normal(xs)], rng=rng, names=("dx",), kink=kink)
    assert y.shape == (xs[0], xs[1], oh, ow)


@pytest.mark.parametrize("case", EMPTY_CASES, ids=_id)
def test_window_with_no_pixel_in_the_image_is_an_error(case):
    xs, (size, stride, start, outputs) = case
    x = np.zeros(xs, np.float32)
    for fn in (lambda: ops.pool_forward(x, mode="max", size=size, stride=stride, start=start,
                                        outputs=outputs),
               lambda: ops.pool_backward(x, x, x, mode="avg", size=size, stride=stride,
                                         start=start, outputs=outputs)):
        with pytest.raises(ValueError, match="pool_"):
            fn()


def test_window_outside_the_image_is_an_error():
    x = np.zeros((1, 1, 4, 4), np.float32)
    with pytest.raises(ValueError, match="pool_forward"):
        ops.pool_forward(x, mode="max", size=2, stride=1, start=-2)  # first window at [-2, 0)
    with pytest.raises(ValueError, match="pool_forward"):
        ops.pool_forward(x, mode="max", size=2, stride=2, outputs=3)  # third window at [4, 6)
    assert ops.pool_forward(x, mode="max", size=2, stride=2, start=-1, outputs=3).shape == (
        1, 1, 3, 3)


def test_output_sizes():
    # AlexNet's overlapping pooling, size 3 stride 2, and cuda-convnet's CIFAR sizes.
    for size, want in [(55, 27), (27, 13), (13, 6), (32, 16), (16, 8), (24, 12)]:
        assert ops.pool_output_size(size, 3, 2) == want
    assert ops.pool_output_size(10, 3, 2, outputs=7) == 7
    assert ops.pool_output_size(1, 5, 1) == 1  # never below 1
    for size, window, stride, start in itertools.product((1, 4, 7, 13), (1, 2, 3), (1, 2, 3),
                                                         (-1, 0, 1)):
        assert ops.pool_output_size(size, window, stride, start) == ref.output_size(
            size, window, stride, start), (size, window, stride, start)


@pytest.mark.parametrize("size_in, size_out", [(55, 27), (27, 13), (13, 6)])
@pytest.mark.parametrize("mode", ["max", "avg"])
def test_alexnet_overlapping_pooling(rng, mode, size_in, size_out):
    x = f32(rng.standard_normal((1, 2, size_in, size_in)))[0]
    y = ops.pool_forward(x, mode=mode, size=3, stride=2)
    assert y.shape == (1, 2, size_out, size_out)
    assert_close(y, ref.forward(x, mode, (3, 3), (2, 2), (0, 0), size_out, size_out), what="y")
    dy = f32(rng.standard_normal(y.shape))[0]
    assert_close(ops.pool_backward(x, y, dy, mode=mode, size=3, stride=2),
                 ref.backward(x, dy, mode, (3, 3), (2, 2), (0, 0)), what="dx")


def test_avg_divides_by_the_in_image_count():
    x = np.ones((1, 1, 4, 4), np.float32)
    x[0, 0, 0, 0] = 4.0
    y = ops.pool_forward(x, mode="avg", size=3, stride=2, start=-1)
    # Windows start at -1 and 1: the first clipped to rows/columns 0..1 (4 pixels), the second
    # to 1..3 (9 pixels).
    assert y.shape == (1, 1, 2, 2)
    assert_close(y[0, 0, 0, 0], 7 / 4, HAND_REL_TOL)
    assert_close(y[0, 0, 0, 1], 1.0, HAND_REL_TOL)
    assert_close(y[0, 0, 1, 1], 1.0, HAND_REL_TOL)
    dx = ops.pool_backward(x, y, np.ones_like(y), mode="avg", size=3, stride=2, start=-1)
    # Pixel (0, 0) is only in the first window: 1/4. Pixel (1, 1) is in all four: 1/4 + 2/6 + 1/9.
    assert_close(dx[0, 0, 0, 0], 1 / 4, HAND_REL_TOL)
    assert_close(dx[0, 0, 1, 1], 1 / 4 + 2 / 6 + 1 / 9, HAND_REL_TOL)


def test_negative_start_and_explicit_outputs():
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 1, 12)
    # Windows of 4 at stride 3 from -2: [-2, 2), [1, 5), [4, 8), [7, 11), [10, 14) -> clipped.
    y = ops.pool_forward(x, mode="max", size=(1, 4), stride=(1, 3), start=(0, -2))
    np.testing.assert_array_equal(y[0, 0, 0], [1, 4, 7, 10, 11])
    y = ops.pool_forward(x, mode="avg", size=(1, 4), stride=(1, 3), start=(0, -2), outputs=(1, 2))
    np.testing.assert_allclose(y[0, 0, 0], [0.5, 2.5])


def test_max_ties_all_receive_the_gradient():
    x = np.zeros((1, 1, 3, 3), np.float32)
    x[0, 0, 0, 1] = x[0, 0, 2, 2] = 5.0  # an exact tie for the max of the single 3x3 window
    y = ops.pool_forward(x, mode="max", size=3, stride=2)
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 5.0
    dx = ops.pool_backward(x, y, np.full_like(y, 2.0), mode="max", size=3, stride=2)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = expected[0, 0, 2, 2] = 2.0
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(ref.backward(x, np.full_like(y, 2.0), "max", (3, 3), (2, 2),
                                               (0, 0)), expected)


def test_max_ties_in_overlapping_windows():
    # Two windows of 3 at stride 2 over 5 columns share column 2; a tie inside each window.
    x = np.array([[[[1.0, 3.0, 3.0, 0.0, 3.0]]]], np.float32)
    y = ops.pool_forward(x, mode="max", size=(1, 3), stride=(1, 2))
    np.testing.assert_array_equal(y, [[[[3.0, 3.0]]]])
    dx = ops.pool_backward(x, y, np.array([[[[1.0, 10.0]]]], np.float32), mode="max",
                           size=(1, 3), stride=(1, 2))
    np.testing.assert_array_equal(dx, [[[[0.0, 1.0, 11.0, 0.0, 10.0]]]])


def test_near_tie_kink_predicate():
    x = np.array([[[[1.0, 2.0, 2.0 + 1e-7, 0.0]]]])
    args = ((1, 2), (1, 2), (0, 0), 1, 2)
    assert ref.near_tie(x, 1, 1e-6, *args) is False  # windows [0, 2) and [2, 4)
    assert ref.near_tie(x, 2, 1e-6, *args) is False
    args = ((1, 3), (1, 1), (0, 0), 1, 2)  # windows [0, 3) and [1, 4): 1 and 2 compete
    assert ref.near_tie(x, 1, 1e-6, *args) and ref.near_tie(x, 2, 1e-6, *args)
    assert not ref.near_tie(x, 0, 1e-6, *args)


@pytest.mark.parametrize("mode", ["max", "avg"])
def test_reference_backward_matches_its_forward(rng, mode):
    sz, st, sa = (3, 2), (2, 1), (-1, 0)
    oh, ow = ref.output_size(7, 3, 2, -1), ref.output_size(5, 2, 1, 0)
    gradcheck(lambda x: ref.forward(x, mode, sz, st, sa, oh, ow),
              lambda x, dy: (ref.backward(x, dy, mode, sz, st, sa),),
              [rng.standard_normal((2, 3, 7, 5))], wrt=[0], rng=rng)


@pytest.mark.gpu
def test_pool_gpu_matches_cpu(rng):
    x = f32(rng.standard_normal((2, 5, 13, 13)))[0]
    check_gpu_vs_cpu("pool_forward", lambda x: ops.pool_forward(x, mode="max", size=3, stride=2),
                     None, [x])


# ---- the CUDA kernels ------------------------------------------------------------------------

# (size, stride, start, outputs) as (h, w) pairs; outputs 0 means cuda-convnet's rule. AlexNet's
# overlapping 3/2, 2/2, a 3x3 window with a negative start (padding), non-square windows and
# strides, windows that overhang the far edge, explicit output counts, stride > size (gaps: inputs
# no window reads get dx = 0), 1x1.
GPU_WINDOWS = [((3, 3), (2, 2), (0, 0), (0, 0)), ((2, 2), (2, 2), (0, 0), (0, 0)),
               ((3, 3), (1, 1), (-1, -1), (0, 0)), ((3, 2), (2, 1), (0, 0), (0, 0)),
               ((2, 3), (3, 2), (1, -1), (0, 0)), ((3, 3), (2, 2), (0, 0), (2, 3)),
               ((2, 2), (2, 2), (-1, -1), (4, 3)), ((4, 1), (1, 2), (0, 0), (0, 0)),
               ((1, 1), (3, 2), (0, 0), (0, 0)), ((5, 5), (3, 3), (-2, -2), (0, 0))]
GPU_SHAPES = [(1, 3, 7, 5), (2, 5, 6, 9), (3, 17, 10, 7), (2, 96, 13, 13)]


def _window_id(window):
    return "-".join(f"{name}{a}x{b}" for name, (a, b) in zip(("size", "stride", "start", "out"),
                                                             window))


def _check_gpu(x, mode, window, beta_acc, rng):
    size, stride, start, oh, ow, empty = _geometry(x.shape, *window)
    if empty:
        pytest.skip("a window with no in-image pixel (the ops refuse it)")
    params = (mode, size[0], size[1], stride[0], stride[1], start[0], start[1])
    yshape = (x.shape[0], x.shape[1], oh, ow)
    dy = rng.standard_normal(yshape).astype(np.float32)
    dx0 = rng.standard_normal(x.shape).astype(np.float32)

    gpu, cpu_results = forward_backward(_core.pool_forward, _core.pool_backward, x, yshape, dy,
                                        dx0, params, beta_acc)
    y_ref = ref.forward(x, mode, size, stride, start, oh, ow)
    dx_ref = ref.backward(x, dy, mode, size, stride, start)

    check_forward_backward(gpu, cpu_results, (y_ref, dx_ref), dx0, beta_acc)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("beta_acc", BETAS)
@pytest.mark.parametrize("shape", GPU_SHAPES, ids=shape_id)
@pytest.mark.parametrize("window", GPU_WINDOWS, ids=_window_id)
def test_pool_gpu(rng, mode, window, shape, beta_acc):
    _check_gpu(rng.standard_normal(shape).astype(np.float32), mode, window, beta_acc, rng)


@pytest.mark.gpu
@pytest.mark.parametrize("beta_acc", BETAS)
@pytest.mark.parametrize("window", GPU_WINDOWS[:3], ids=_window_id)
def test_max_pool_gpu_ties_all_receive_the_gradient(rng, window, beta_acc):
    """Small integers make ties in most windows: every input equal to its window's maximum gets
    that window's dy, as on the CPU (csrc/cpu/pool.cpp) and in the reference."""
    x = rng.integers(-2, 3, size=(2, 5, 9, 11)).astype(np.float32)
    _check_gpu(x, "max", window, beta_acc, rng)


@pytest.mark.gpu
@pytest.mark.parametrize("mode", ["max", "avg"])
@pytest.mark.parametrize("shape", [(2, 96, 55, 55), (3, 256, 13, 13)], ids=shape_id)
def test_pool_gpu_alexnet_shapes(rng, mode, shape):
    _check_gpu(rng.standard_normal(shape).astype(np.float32), mode, GPU_WINDOWS[0], 1.0, rng)


# ---- the winners the pooling layer keeps on the CPU (ops/pool.h) ---------------------------------

def _core_pool(x, size, stride, start, outputs, dy, beta, winners):
    """Max pooling forward and backward through _core, with or without a winners buffer."""
    sz, st, sa, oh, ow, _ = _geometry(x.shape, size, stride, start, outputs)
    t = _core.Tensor.from_numpy
    y = t(np.full(x.shape[:2] + (oh, ow), np.nan, x.dtype))
    won = t(np.full(x.shape[:2] + (oh, ow), -7, np.int32).view(np.float32)) if winners else None
    geometry = ("max", sz[0], sz[1], st[0], st[1], sa[0], sa[1])
    _core.pool_forward(t(x), y, *geometry, winners=won)
    dx = t(beta_start := np.linspace(-1, 1, x.size).reshape(x.shape).astype(x.dtype))
    _core.pool_backward(t(x), y, t(dy.astype(x.dtype)), dx, *geometry, beta_acc=beta,
                        winners=won)
    return y.numpy(), dx.numpy(), (won.numpy().view(np.int32) if winners else None), beta_start


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=_id)
def test_max_pool_with_winners_is_bit_identical_to_the_search(rng, case, dtype):
    # Values from {0, 1, 2}: most windows tie, some do not; -inf and NaN appear too.
    xs, window = case
    x = rng.integers(0, 3, xs).astype(dtype)
    x.flat[rng.integers(0, x.size, 2)] = -np.inf
    x.flat[rng.integers(0, x.size, 1)] = np.nan
    sz, st, sa, oh, ow, _ = _geometry(xs, *window)
    dy = rng.standard_normal(xs[:2] + (oh, ow))
    for beta in (0.0, 1.0):
        y0, dx0, _, _ = _core_pool(x, *window, dy, beta, winners=False)
        y1, dx1, won, _ = _core_pool(x, *window, dy, beta, winners=True)
        np.testing.assert_array_equal(y1, y0)
        np.testing.assert_array_equal(dx1, dx0)
    # A winner is the only input of its window equal to the maximum; -1 marks a tie.
    planes = x.reshape(-1, xs[2] * xs[3])
    won = won.reshape(planes.shape[0], -1)
    y = y0.reshape(planes.shape[0], -1)
    assert (won >= -1).all() and (won < xs[2] * xs[3]).all()
    for plane, o in zip(*np.nonzero(won >= 0)):
        assert planes[plane, won[plane, o]] == y[plane, o]
    assert (won == -1).any() and (won >= 0).any()


def test_winners_of_the_wrong_size_are_refused(rng):
    x = f32(rng.standard_normal((1, 2, 5, 5)))[0]
    t = _core.Tensor.from_numpy
    with pytest.raises(ValueError, match="winners must be a CPU tensor of 8 4-byte elements"):
        _core.pool_forward(t(x), t(np.zeros((1, 2, 2, 2), np.float32)), "max", 3, 3, 2, 2, 0, 0,
                           winners=t(np.zeros(3, np.float32)))
