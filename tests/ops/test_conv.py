"""Convolution: both output-size rules, the float64 reference and finite differences on the shared
odd shapes and windows (groups 1 and 2, both rules), overhanging windows, and the reference itself
against a second, element-by-element form of the formula.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA convolution kernels (kernels/gemm.cuh,
conv_forward.cu, conv_backward_data.cu, conv_backward_filter.cu) on device tensors against the
float64 reference and the CPU path under every math precision: fp32 against FP32_REL_TOL, tf32
and bf16 (tensor cores, FP32 accumulation; plain FP32 below sm_80) against TF32_REL_TOL and
BF16_REL_TOL. Outputs are poisoned with NaN before each launch, so an element a kernel fails to
write cannot pass; backward runs with beta=0 (gradients poisoned too) and beta=1 (they start random
and must come back as old + gradient). The geometries (gpu_helpers.CONV_CASES, shared with the
locally connected tests): batch 1 and 3, 5 and 17 channels, non-square images, strides and
paddings that do not divide evenly, cuda-convnet's overhanging last windows, groups, a backward
filter that splits K over many positions, AlexNet's conv1 and conv2 (batch 8); the split-K
backward filter is bit-identical across reruns.
"""

import itertools

import numpy as np
import pytest

import convnet
import convnet.ops as ops
from convnet import _core
from gpu_helpers import (BETAS, CONV_CASES, PRECISION_REL_TOL, cached, check_gradients, conv_id,
                         conv_output_size, dev, gradient_out, host, keyed_rng, normal_f32,
                         poisoned, real_gpu_sized)
from helpers import (FP32_REL_TOL, FP64_REL_TOL, HAND_REL_TOL, ODD_SHAPES, ODD_WINDOWS,
                     assert_close, check_gpu_vs_cpu, check_op, f32, gradcheck, odd_groups)
from reference import conv as ref

RULES = ("floor", "cuda-convnet")
FILTERS = 6  # divisible by both group counts

CASES = [(xs, k, s, p, g, rule)
         for xs, (k, s, p), rule in itertools.product(ODD_SHAPES, ODD_WINDOWS, RULES)
         for g in odd_groups(xs)]


def _case_id(case):
    xs, k, s, p, g, rule = case
    return f"x{'x'.join(map(str, xs))}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}-g{g}-{rule}"


def _wrappers(xs, kernel, stride, padding, groups, rule):
    kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)
    oh = ref.output_size(xs[2], kernel[0], stride[0], padding[0], rule)
    ow = ref.output_size(xs[3], kernel[1], stride[1], padding[1], rule)
    return (lambda x, w, b: ops.conv_forward(x, w, b, **kw),
            lambda x, w, b, dy: ops.conv_backward(x, w, dy, **kw),
            lambda x, w, b: ref.forward(x, w, b, stride, padding, groups, oh, ow),
            lambda x, w, b, dy: ref.backward(x, w, dy, stride, padding, groups))


def _inputs(rng, xs, kernel, groups):
    return [rng.standard_normal(xs), rng.standard_normal((FILTERS, xs[1] // groups) + kernel),
            rng.standard_normal(FILTERS)]


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_conv_three_oracles(rng, case):
    xs, kernel, stride, padding, groups, rule = case
    forward, backward, ref_forward, ref_backward = _wrappers(*case)
    y, _ = check_op(forward, backward, ref_forward, ref_backward, _inputs(rng, xs, kernel, groups),
                    rng=rng, wrt=(0, 1, 2), names=("dx", "dw", "db"))
    oh = ref.output_size(xs[2], kernel[0], stride[0], padding[0], rule)
    ow = ref.output_size(xs[3], kernel[1], stride[1], padding[1], rule)
    assert y.shape == (xs[0], FILTERS, oh, ow)


@pytest.mark.parametrize("case", CASES[:6], ids=_case_id)
def test_conv_without_bias(rng, case):
    xs, kernel, stride, padding, groups, rule = case
    x, w, _ = f32(*_inputs(rng, xs, kernel, groups))
    kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)
    oh = ref.output_size(xs[2], kernel[0], stride[0], padding[0], rule)
    ow = ref.output_size(xs[3], kernel[1], stride[1], padding[1], rule)
    assert_close(ops.conv_forward(x, w, **kw),
                 ref.forward(x, w, None, stride, padding, groups, oh, ow), what="y without bias")


def test_output_size_rules():
    # The paper's conv1: 224 with 11x11 at stride 4 gives 55 only under cuda-convnet's rule.
    assert ops.conv_output_size(224, 11, 4, 0, rule="cuda-convnet") == 55
    assert ops.conv_output_size(224, 11, 4, 0, rule="floor") == 54
    assert ops.conv_output_size(224, 11, 4) == 54  # floor is the default
    assert ops.conv_output_size(227, 11, 4, 0, rule="floor") == 55
    # Where the stride divides the span the rules agree.
    assert ops.conv_output_size(27, 5, 1, 2, rule="floor") == 27
    assert ops.conv_output_size(27, 5, 1, 2, rule="cuda-convnet") == 27
    for size, k, s, p in itertools.product((1, 5, 10, 13, 32), (1, 2, 3, 5), (1, 2, 3, 4),
                                           (0, 1, 2)):
        if size + 2 * p < k:
            continue
        for rule in RULES:
            assert ops.conv_output_size(size, k, s, p, rule=rule) == ref.output_size(
                size, k, s, p, rule), (size, k, s, p, rule)


def test_cuda_convnet_rule_last_window_overhangs(rng):
    # 10 wide, kernel 3, stride 4: windows start at 0, 4, 8 under cuda-convnet's rule (floor stops
    # at 2 windows); the last covers columns 8, 9 and a missing 10th that must read as zero.
    x = f32(rng.standard_normal((1, 1, 3, 10)))[0]
    w = np.ones((1, 1, 3, 3), np.float32)
    y = ops.conv_forward(x, w, stride=(1, 4), rule="cuda-convnet")
    assert y.shape == (1, 1, 1, 3)
    assert_close(y[0, 0, 0], [x[0, 0, :, 0:3].sum(), x[0, 0, :, 4:7].sum(),
                              x[0, 0, :, 8:10].sum()], HAND_REL_TOL, what="window sums")
    assert ops.conv_forward(x, w, stride=(1, 4)).shape == (1, 1, 1, 2)
    # Its backward: column 9 gets the overhanging window's gradient, nothing lands out of bounds.
    dy = np.array([[[[1.0, 10.0, 100.0]]]], np.float32)
    dx, dw, db = ops.conv_backward(x, w, dy, stride=(1, 4), rule="cuda-convnet")
    np.testing.assert_array_equal(dx[0, 0, 0], [1, 1, 1, 0, 10, 10, 10, 0, 100, 100])
    assert db[0] == 111.0


def test_cuda_convnet_rule_window_entirely_past_the_image(rng):
    # 1x1 kernel at stride 3 on 5 columns: the rule gives 1 + ceil(4/3) = 3 positions, at columns
    # 0, 3 and 6; the last reads only missing pixels, which the spec says read as zeros, so its
    # output is the bias and it sends no gradient anywhere.
    x, w, b = f32(rng.standard_normal((1, 2, 1, 5)), rng.standard_normal((3, 2, 1, 1)),
                  rng.standard_normal(3))
    assert ops.conv_output_size(5, 1, 3, 0, rule="cuda-convnet") == 3
    y = ops.conv_forward(x, w, b, stride=3, rule="cuda-convnet")
    assert y.shape == (1, 3, 1, 3)
    assert_close(y[0, :, 0, 2], b, what="the window past the image")
    assert_close(y, ref.forward(x, w, b, (3, 3), (0, 0), 1, 1, 3), what="y")
    dy = f32(rng.standard_normal(y.shape))[0]
    for got, want, name in zip(ops.conv_backward(x, w, dy, stride=3, rule="cuda-convnet"),
                               ref.backward(x, w, dy, (3, 3), (0, 0), 1), ("dx", "dw", "db")):
        assert_close(got, want, what=name)


def test_alexnet_conv1_overhang(rng):
    # 224 / 11 / 4 under cuda-convnet's rule: 55 positions, the last starting at 216 and hanging
    # 3 pixels over the far edge; checked against the formula at the corners.
    x = f32(rng.standard_normal((1, 3, 224, 224)))[0]
    w = f32(rng.standard_normal((4, 3, 11, 11)) * 0.1)[0]
    y = ops.conv_forward(x, w, stride=4, rule="cuda-convnet")
    assert y.shape == (1, 4, 55, 55)
    assert ops.conv_forward(x, w, stride=4, rule="floor").shape == (1, 4, 54, 54)
    corner = np.einsum("ckl,fckl->f", x[0, :, 216:, 216:].astype(np.float64),
                       w[:, :, :8, :8].astype(np.float64))
    assert_close(y[0, :, 54, 54], corner, what="the overhanging corner")
    origin = np.einsum("ckl,fckl->f", x[0, :, :11, :11].astype(np.float64), w.astype(np.float64))
    assert_close(y[0, :, 0, 0], origin, what="the first position")


def test_non_square_kernel_stride_padding(rng):
    # Every pair argument differs between height and width, and swapping them changes the result.
    x, w = f32(rng.standard_normal((2, 3, 8, 11)), rng.standard_normal((4, 3, 2, 5)))
    kw = dict(stride=(3, 2), padding=(0, 2))
    y = ops.conv_forward(x, w, **kw)
    assert y.shape == (2, 4, 3, 6)
    assert_close(y, ref.forward(x, w, None, (3, 2), (0, 2), 1, 3, 6), what="y")
    wt = np.ascontiguousarray(w.transpose(0, 1, 3, 2))
    xt = np.ascontiguousarray(x.transpose(0, 1, 3, 2))
    yt = ops.conv_forward(xt, wt, stride=(2, 3), padding=(2, 0))
    assert_close(yt, y.transpose(0, 1, 3, 2), what="transposed problem")


def test_groups_do_not_mix_channels(rng):
    # With groups=2, group 0's outputs must not depend on group 1's inputs, nor on its filters.
    x = f32(rng.standard_normal((1, 4, 5, 5)))[0]
    w = f32(rng.standard_normal((6, 2, 3, 3)))[0]
    y = ops.conv_forward(x, w, padding=1, groups=2)
    x2 = x.copy()
    x2[:, 2:] = 0
    np.testing.assert_array_equal(ops.conv_forward(x2, w, padding=1, groups=2)[:, :3], y[:, :3])
    w2 = w.copy()
    w2[3:] = 0
    np.testing.assert_array_equal(ops.conv_forward(x, w2, padding=1, groups=2)[:, :3], y[:, :3])
    assert not np.allclose(ops.conv_forward(x2, w, padding=1, groups=2)[:, 3:], y[:, 3:])
    # And it is two independent convolutions.
    for g in range(2):
        part = ops.conv_forward(np.ascontiguousarray(x[:, 2 * g:2 * g + 2]),
                                np.ascontiguousarray(w[3 * g:3 * g + 3]), padding=1)
        assert_close(y[:, 3 * g:3 * g + 3], part, what=f"group {g}")


def test_float64_in_float64_out(rng):
    x, w = rng.standard_normal((1, 3, 5, 4)), rng.standard_normal((2, 3, 3, 3))
    y = ops.conv_forward(x, w, padding=1)
    assert y.dtype == np.float64
    assert all(g.dtype == np.float64 for g in ops.conv_backward(x, w, y, padding=1))


def test_thread_count_does_not_change_results(rng):
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


# ---- the reference itself ---------------------------------------------------------------------

@pytest.mark.parametrize("xs, ws, stride, padding, groups, rule", [
    ((1, 2, 4, 5), (3, 2, 2, 3), (1, 2), (1, 0), 1, "floor"),
    ((2, 4, 5, 3), (4, 2, 3, 2), (2, 2), (1, 1), 2, "cuda-convnet"),
    ((1, 1, 6, 6), (1, 1, 3, 3), (4, 4), (0, 0), 1, "cuda-convnet"),  # overhang both axes
    ((1, 2, 2, 3), (2, 2, 3, 3), (3, 3), (2, 2), 1, "cuda-convnet"),  # windows in the padding
])
def test_reference_forward_matches_direct_formula(rng, xs, ws, stride, padding, groups, rule):
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    oh = ref.output_size(xs[2], ws[2], stride[0], padding[0], rule)
    ow = ref.output_size(xs[3], ws[3], stride[1], padding[1], rule)
    assert_close(ref.forward(x, w, b, stride, padding, groups, oh, ow),
                 ref.forward_direct(x, w, b, stride, padding, groups, oh, ow), FP64_REL_TOL,
                 what="reference vs direct formula")


def test_reference_backward_matches_its_forward(rng):
    # The hand-derived reference backward against central differences of the reference forward.
    stride, padding, groups = (2, 1), (1, 2), 2
    oh = ref.output_size(5, 3, 2, 1, "cuda-convnet")
    ow = ref.output_size(4, 2, 1, 2, "cuda-convnet")
    gradcheck(lambda x, w, b: ref.forward(x, w, b, stride, padding, groups, oh, ow),
              lambda x, w, b, dy: ref.backward(x, w, dy, stride, padding, groups),
              [rng.standard_normal((2, 4, 5, 4)), rng.standard_normal((4, 2, 3, 2)),
               rng.standard_normal(4)], wrt=[0, 1, 2], rng=rng)


@pytest.mark.gpu
def test_conv_gpu_matches_cpu(rng):
    x, w = f32(rng.standard_normal((2, 4, 9, 7)), rng.standard_normal((6, 2, 3, 2)))
    check_gpu_vs_cpu("conv_forward",
                     lambda x, w: ops.conv_forward(x, w, stride=2, padding=1, groups=2), None,
                     [x, w])


# ---- the CUDA kernels ------------------------------------------------------------------------

def _gpu_case(case):
    xs, f, kernel, stride, padding, groups, rule = case
    oh, ow = conv_output_size(case)
    rng = keyed_rng("conv", case)
    x = normal_f32(rng, xs)
    w = normal_f32(rng, (f, xs[1] // groups) + kernel)
    b = normal_f32(rng, f)
    dy = normal_f32(rng, (xs[0], f, oh, ow))
    y_ref = cached(("conv-y", case),
                   lambda: ref.forward(x, w, b, stride, padding, groups, oh, ow))
    grads = cached(("conv-grad", case),
                   lambda: ref.backward(x, w, dy, stride, padding, groups))
    geometry = (stride[0], stride[1], padding[0], padding[1], groups)
    cpu_kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)
    return x, w, b, dy, y_ref, grads, geometry, cpu_kw


def _alexnet_sized(case):
    """AlexNet's conv1 and conv2 (millions of input values times filters)."""
    x_shape, filters = case[0], case[1]
    return int(np.prod(x_shape)) * filters > 5_000_000


@pytest.mark.gpu
@pytest.mark.parametrize("case", real_gpu_sized(CONV_CASES, _alexnet_sized), ids=conv_id)
def test_conv_forward(precision, case):
    x, w, b, _, y_ref, _, geometry, cpu_kw = _gpu_case(case)
    tol = PRECISION_REL_TOL[precision]
    ty = poisoned(y_ref.shape)
    _core.conv_forward(dev(x), dev(w), dev(b), ty, *geometry)
    y = host(ty)
    assert_close(y, y_ref, tol, what=f"conv y ({precision}) vs float64")
    assert_close(y, ops.conv_forward(x, w, b, **cpu_kw), tol, what=f"conv y ({precision}) vs CPU")
    ty = poisoned(y_ref.shape)
    _core.conv_forward(dev(x), dev(w), None, ty, *geometry)
    assert_close(host(ty), y_ref - b.astype(np.float64)[None, :, None, None], tol,
                 what=f"conv y without bias ({precision})")


@pytest.mark.gpu
@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("case", real_gpu_sized(CONV_CASES, _alexnet_sized), ids=conv_id)
def test_conv_backward(precision, case, beta):
    x, w, b, dy, _, refs, geometry, cpu_kw = _gpu_case(case)
    rng = keyed_rng("conv-old", case, beta)
    olds = [normal_f32(rng, a.shape) for a in refs]
    outs = [gradient_out(old, beta) for old in olds]
    _core.conv_backward(dev(x), dev(w), dev(dy), *outs, *geometry, beta=beta)
    check_gradients(f"conv ({precision})", outs, refs, ops.conv_backward(x, w, dy, **cpu_kw),
                    olds, beta, PRECISION_REL_TOL[precision])


@pytest.mark.gpu
def test_conv_backward_skips_undefined_gradients():
    case = CONV_CASES[4]
    x, w, b, dy, _, (dx_ref, dw_ref, db_ref), geometry, _ = _gpu_case(case)
    tdw = poisoned(dw_ref.shape)
    _core.conv_backward(dev(x), dev(w), dev(dy), None, tdw, None, *geometry)
    assert_close(host(tdw), dw_ref, FP32_REL_TOL, what="conv dw alone")
    tdx, tdb = poisoned(dx_ref.shape), poisoned(db_ref.shape)
    _core.conv_backward(dev(x), dev(w), dev(dy), tdx, None, tdb, *geometry)
    assert_close(host(tdx), dx_ref, FP32_REL_TOL, what="conv dx without dw")
    assert_close(host(tdb), db_ref, FP32_REL_TOL, what="conv db without dw")


@pytest.mark.gpu
def test_conv_backward_filter_is_deterministic():
    """The split-K backward filter sums its slices in a fixed order: bit-identical reruns."""
    x, w, b, dy, _, (dx_ref, dw_ref, db_ref), geometry, _ = _gpu_case(CONV_CASES[-1])
    tx, tw, tdy = dev(x), dev(w), dev(dy)
    runs = []
    for _ in range(2):
        tdw, tdb = poisoned(dw_ref.shape), poisoned(db_ref.shape)
        _core.conv_backward(tx, tw, tdy, None, tdw, tdb, *geometry)
        runs.append((host(tdw), host(tdb)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
