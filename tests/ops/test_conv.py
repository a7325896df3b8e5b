"""Convolution against the float64 reference and finite differences, on odd shapes."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import conv as ref

# (x shape, w shape, stride, padding, groups, rule): batch 1, non-square images and kernels,
# channel counts 3/5/48, strides and paddings that do not divide evenly, groups 2, the
# cuda-convnet rule with an overhanging last window, and the 1x1 fast path.
CASES = [
    ((1, 3, 7, 5), (4, 3, 3, 3), 1, 1, 1, "floor"),
    ((2, 5, 9, 6), (7, 5, 2, 3), (2, 1), (0, 1), 1, "floor"),
    ((3, 48, 6, 5), (10, 24, 3, 3), 2, 1, 2, "floor"),
    ((2, 4, 11, 8), (6, 2, 3, 5), (2, 3), (1, 2), 2, "cuda-convnet"),
    ((1, 3, 10, 13), (5, 3, 3, 3), 4, 0, 1, "cuda-convnet"),
    ((2, 5, 4, 3), (3, 5, 1, 1), 1, 0, 1, "floor"),
    ((1, 6, 5, 7), (4, 3, 3, 2), 3, 2, 2, "cuda-convnet"),
]


def _pair(v):
    return tuple(v) if isinstance(v, tuple) else (v, v)


@pytest.mark.parametrize("xs, ws, stride, padding, groups, rule", CASES)
def test_conv_matches_reference(rng, xs, ws, stride, padding, groups, rule):
    x, w, b = f32(rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0]))
    kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)
    y = ops.conv_forward(x, w, b, **kw)
    s, p = _pair(stride), _pair(padding)
    oh = ref.output_size(xs[2], ws[2], s[0], p[0], rule)
    ow = ref.output_size(xs[3], ws[3], s[1], p[1], rule)
    assert y.shape == (xs[0], ws[0], oh, ow) and y.dtype == np.float32
    assert_close(y, ref.forward(x, w, b, s, p, groups, oh, ow), what="y")
    assert_close(ops.conv_forward(x, w, **kw), ref.forward(x, w, None, s, p, groups, oh, ow),
                 what="y without bias")

    dy = f32(rng.standard_normal(y.shape))[0]
    dx, dw, db = ops.conv_backward(x, w, dy, **kw)
    rdx, rdw, rdb = ref.backward(x, w, dy, s, p, groups)
    assert_close(dx, rdx, what="dx")
    assert_close(dw, rdw, what="dw")
    assert_close(db, rdb, what="db")


@pytest.mark.parametrize("xs, ws, stride, padding, groups, rule", CASES)
def test_conv_gradcheck(rng, xs, ws, stride, padding, groups, rule):
    kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)
    inputs = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
    gradcheck(lambda x, w, b: ops.conv_forward(x, w, b, **kw),
              lambda x, w, b, dy: ops.conv_backward(x, w, dy, **kw),
              inputs, wrt=[0, 1, 2], rng=rng)


def test_output_size_rules():
    # The paper's conv1: 224 with 11x11 stride 4 gives 55 only under cuda-convnet's rule.
    assert ops.conv_output_size(224, 11, 4, 0, rule="cuda-convnet") == 55
    assert ops.conv_output_size(224, 11, 4, 0, rule="floor") == 54
    assert ops.conv_output_size(227, 11, 4, 0, rule="floor") == 55
    assert ops.conv_output_size(27, 5, 1, 2) == 27
    assert ops.conv_output_size(13, 3, 1, 1, rule="cuda-convnet") == 13
    for size, k, s, p in [(10, 3, 4, 0), (9, 2, 2, 1), (31, 5, 3, 2)]:
        for rule in ("floor", "cuda-convnet"):
            assert ops.conv_output_size(size, k, s, p, rule=rule) == ref.output_size(size, k, s, p,
                                                                                      rule)


def test_overhanging_window_reads_zeros(rng):
    # 10 wide, kernel 3, stride 4: windows start at 0, 4, 8; the last covers columns 8, 9 and a
    # missing 10th that must read as zero.
    x = f32(rng.standard_normal((1, 1, 3, 10)))[0]
    w = np.ones((1, 1, 3, 3), np.float32)
    y = ops.conv_forward(x, w, stride=(1, 4), rule="cuda-convnet")
    assert y.shape == (1, 1, 1, 3)
    np.testing.assert_allclose(y[0, 0, 0, 2], x[0, 0, :, 8:10].sum(), rtol=1e-5)
    assert ops.conv_forward(x, w, stride=(1, 4)).shape == (1, 1, 1, 2)


def test_alexnet_conv1_shape(rng):
    x = f32(rng.standard_normal((1, 3, 224, 224)))[0]
    w = f32(rng.standard_normal((96, 3, 11, 11)) * 0.01)[0]
    assert ops.conv_forward(x, w, stride=4, rule="cuda-convnet").shape == (1, 96, 55, 55)


def test_groups_do_not_mix_channels(rng):
    # With groups=2, output channels of group 0 must not depend on input channels of group 1.
    x = f32(rng.standard_normal((1, 4, 5, 5)))[0]
    w = f32(rng.standard_normal((6, 2, 3, 3)))[0]
    y = ops.conv_forward(x, w, padding=1, groups=2)
    x2 = x.copy()
    x2[:, 2:] = 0
    y2 = ops.conv_forward(x2, w, padding=1, groups=2)
    np.testing.assert_array_equal(y[:, :3], y2[:, :3])
    assert not np.allclose(y[:, 3:], y2[:, 3:])


def test_thread_count_does_not_change_results(rng):
    import convnet
    x, w = f32(rng.standard_normal((5, 6, 9, 8)), rng.standard_normal((4, 3, 3, 3)))
    dy = f32(rng.standard_normal((5, 4, 9, 8)))[0]
    kw = dict(padding=1, groups=2)
    threaded = ops.conv_forward(x, w, **kw), *ops.conv_backward(x, w, dy, **kw)
    n = convnet.get_num_threads()
    try:
        convnet.set_num_threads(1)
        single = ops.conv_forward(x, w, **kw), *ops.conv_backward(x, w, dy, **kw)
    finally:
        convnet.set_num_threads(n)
    for a, b in zip(threaded, single):
        assert_close(a, b, what="threaded vs single-threaded")
