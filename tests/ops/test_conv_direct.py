"""The CPU's direct convolution (csrc/cpu/direct_conv.cpp, AVX-512): stride-1 float32 layers with
channel counts in multiples of 16, pinned to the direct path in turn with im2col + GEMM, against
the float64 reference and finite differences (which run in float64, on the GEMM path), and against
each other. Shapes: batch 1, non-square images, kernels wider than the filter-gradient tile (9),
rows longer than the forward tile (40), padding of kernel-1 (outputs larger than inputs), "same"
padding (the kernels leave out the taps that read it) on rows of 3 to 16, 1x1,
groups, thin first layers (3 channels: backward-data by tiles of rows and 32 columns, rows
wider than one tile included; 1 channel: backward-data falls back to GEMM), 16- and 32-channel
blocks; and strided layers with few input channels, whose forward and filter gradient go through
space-to-depth to the direct path (AlexNet's conv1 in small, with cuda-convnet's overhang). Every
case checks that the direct path really ran."""

import numpy as np
import pytest

import convnet
import convnet.ops as ops
from convnet import _core
from helpers import FP32_REL_TOL, assert_close, check_op, f32
from reference import conv as ref

pytestmark = pytest.mark.skipif(not _core.cpu_direct_conv_supported(),
                                reason="this CPU has no AVX-512F: the direct convolution is off")

# (x shape, w shape, padding, groups)
CASES = [
    ((1, 16, 7, 9), (32, 16, 3, 5), (1, 2), 1),
    ((3, 32, 16, 16), (32, 32, 5, 5), (2, 2), 1),
    ((4, 3, 11, 13), (16, 3, 5, 5), (2, 2), 1),
    ((2, 3, 7, 37), (32, 3, 5, 5), (2, 2), 1),
    ((2, 1, 9, 7), (16, 1, 3, 3), (1, 1), 1),
    ((2, 32, 8, 5), (64, 16, 3, 3), (0, 1), 2),
    ((3, 16, 9, 30), (16, 16, 7, 9), (3, 4), 1),
    ((2, 16, 6, 6), (48, 16, 1, 1), (0, 0), 1),
    ((2, 16, 5, 4), (32, 16, 3, 3), (2, 2), 1),
    ((2, 16, 3, 40), (32, 16, 3, 3), (1, 1), 1),
    ((2, 48, 4, 40), (16, 48, 3, 3), (1, 1), 1),
    # Small images: the filter gradient sums several per tile, the last item holding fewer.
    ((7, 16, 6, 5), (32, 16, 3, 3), (1, 1), 1),
    ((5, 32, 4, 4), (32, 16, 3, 3), (1, 1), 2),
    # "Same" 5x5 layers, whose taps reading the padding are left out: one tile touching both
    # ends of its row (3 wide), the filter gradient's first and last two columns of a row meeting
    # (6 wide), and MNIST's conv2 (14 wide, two tiles, two 32-filter blocks).
    ((2, 16, 6, 3), (32, 16, 5, 5), (2, 2), 1),
    ((2, 16, 4, 6), (32, 16, 5, 5), (2, 2), 1),
    ((3, 32, 14, 14), (64, 32, 5, 5), (2, 2), 1),
]


def _id(case):
    xs, ws, p, g = case
    return f"x{'x'.join(map(str, xs))}-w{'x'.join(map(str, ws))}-p{p[0]}{p[1]}-g{g}"


@pytest.fixture
def algorithm():
    """Sets the CPU convolution algorithm for one test and restores the default."""
    previous = _core.get_cpu_conv_algorithm()
    yield _core.set_cpu_conv_algorithm
    _core.set_cpu_conv_algorithm(previous)


def _ops(xs, ws, padding, groups):
    kw = dict(padding=padding, groups=groups)
    oh = ref.output_size(xs[2], ws[2], 1, padding[0], "floor")
    ow = ref.output_size(xs[3], ws[3], 1, padding[1], "floor")
    return (lambda x, w, b: ops.conv_forward(x, w, b, **kw),
            lambda x, w, b, dy: ops.conv_backward(x, w, dy, **kw),
            lambda x, w, b: ref.forward(x, w, b, (1, 1), padding, groups, oh, ow),
            lambda x, w, b, dy: ref.backward(x, w, dy, (1, 1), padding, groups))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_direct_against_the_reference(rng, algorithm, case):
    xs, ws, padding, groups = case
    algorithm("direct")
    before = _core.cpu_direct_conv_calls()
    inputs = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
    check_op(*_ops(xs, ws, padding, groups), inputs, rng=rng, wrt=(0, 1, 2),
             names=("dx", "dw", "db"))
    # backward-data of a thin layer stays on GEMM, except with 3 channels (by rows)
    thin = xs[1] // groups % 16 != 0 and not (xs[1] == 3 and groups == 1)
    assert _core.cpu_direct_conv_calls() - before >= (2 if thin else 3)


@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("beta", [0.0, 1.0, 0.5])
def test_direct_matches_gemm(rng, algorithm, case, beta):
    xs, ws, padding, groups = case
    x, w, b = f32(rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0]))
    oh = ref.output_size(xs[2], ws[2], 1, padding[0], "floor")
    ow = ref.output_size(xs[3], ws[3], 1, padding[1], "floor")
    dy = f32(rng.standard_normal((xs[0], ws[0], oh, ow)))[0]
    start = f32(rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0]))
    results = {}
    for name in ("gemm", "direct"):
        algorithm(name)
        tensor = _core.Tensor.from_numpy
        y = tensor(np.full((xs[0], ws[0], oh, ow), np.nan, np.float32))  # unwritten stays NaN
        _core.conv_forward(tensor(x), tensor(w), tensor(b), y, 1, 1, padding[0], padding[1],
                           groups)
        grads = [tensor(a) for a in start]
        _core.conv_backward(tensor(x), tensor(w), tensor(dy), *grads, 1, 1, padding[0],
                            padding[1], groups, beta)
        results[name] = [y.numpy()] + [g.numpy() for g in grads]
    for what, a, d in zip(("y", "dx", "dw", "db"), results["gemm"], results["direct"]):
        assert np.isfinite(d).all(), f"{what}: the direct path left elements unwritten"
        assert_close(d, a, FP32_REL_TOL, what=f"{what}, direct vs gemm, beta={beta}")


# Strided, few input channels: (x shape, w shape, stride, padding, size rule). Space-to-depth
# gives C*s^2 channels (48, 12, 9) and kernels of ceil(k/s) blocks (3, 3, 1), the last with
# zero taps where k does not fill them; the data gradient stays on GEMM.
STRIDED = [
    ((2, 3, 26, 22), (16, 3, 11, 11), 4, 0, "cuda-convnet"),  # a row and a column of overhang
    ((1, 3, 15, 17), (32, 3, 5, 5), 2, 2, "floor"),
    ((3, 1, 13, 10), (16, 1, 3, 3), 3, 1, "floor"),
]


def _strided_id(case):
    xs, ws, stride, padding, rule = case
    return f"x{'x'.join(map(str, xs))}-w{'x'.join(map(str, ws))}-s{stride}-p{padding}-{rule}"


def _strided_sizes(xs, ws, stride, padding, rule):
    return (ref.output_size(xs[2], ws[2], stride, padding, rule),
            ref.output_size(xs[3], ws[3], stride, padding, rule))


@pytest.mark.parametrize("case", STRIDED, ids=_strided_id)
def test_strided_thin_layers_against_the_reference(rng, algorithm, case):
    xs, ws, stride, padding, rule = case
    oh, ow = _strided_sizes(*case)
    kw = dict(stride=stride, padding=padding, rule=rule)
    algorithm("direct")
    before = _core.cpu_direct_conv_calls()
    inputs = [rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])]
    check_op(lambda x, w, b: ops.conv_forward(x, w, b, **kw),
             lambda x, w, b, dy: ops.conv_backward(x, w, dy, **kw),
             lambda x, w, b: ref.forward(x, w, b, (stride,) * 2, (padding,) * 2, 1, oh, ow),
             lambda x, w, b, dy: ref.backward(x, w, dy, (stride,) * 2, (padding,) * 2, 1),
             inputs, rng=rng, wrt=(0, 1, 2), names=("dx", "dw", "db"))
    assert _core.cpu_direct_conv_calls() - before >= 2  # forward and filter gradient


@pytest.mark.parametrize("case", STRIDED, ids=_strided_id)
def test_strided_thin_layers_match_gemm_with_accumulation(rng, algorithm, case):
    xs, ws, stride, padding, rule = case
    oh, ow = _strided_sizes(*case)
    x, w, b = f32(rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0]))
    dy = f32(rng.standard_normal((xs[0], ws[0], oh, ow)))[0]
    start = f32(rng.standard_normal(ws), rng.standard_normal(ws[0]))
    tensor = _core.Tensor.from_numpy
    results = {}
    for name in ("gemm", "direct"):
        algorithm(name)
        before = _core.cpu_direct_conv_calls()
        y = tensor(np.full((xs[0], ws[0], oh, ow), np.nan, np.float32))
        _core.conv_forward(tensor(x), tensor(w), tensor(b), y, stride, stride, padding, padding, 1)
        grads = [tensor(a) for a in start]
        _core.conv_backward(tensor(x), tensor(w), tensor(dy), None, *grads, stride, stride,
                            padding, padding, 1, 0.5)
        assert _core.cpu_direct_conv_calls() - before == (2 if name == "direct" else 0)
        results[name] = [y.numpy()] + [g.numpy() for g in grads]
    for what, a, d in zip(("y", "dw", "db"), results["gemm"], results["direct"]):
        assert np.isfinite(d).all(), f"{what}: space-to-depth left elements unwritten"
        assert_close(d, a, FP32_REL_TOL, what=f"{what}, space-to-depth vs gemm, beta=0.5")


def test_auto_takes_the_direct_path_only_for_stride_1_and_a_full_batch(rng, algorithm):
    algorithm("auto")
    threads = convnet.get_num_threads()
    x = f32(rng.standard_normal((threads * 2, 16, 8, 8)))[0]
    w = f32(rng.standard_normal((32, 16, 3, 3)))[0]
    before = _core.cpu_direct_conv_calls()
    ops.conv_forward(x, w, padding=1)
    assert _core.cpu_direct_conv_calls() == before + 1
    ops.conv_forward(x, f32(rng.standard_normal((128, 16, 3, 3)))[0], padding=1)  # fat: direct
    assert _core.cpu_direct_conv_calls() == before + 2
    ops.conv_forward(x, w, padding=1, stride=2)  # strided with 16 channels: GEMM
    if threads > 1:
        ops.conv_forward(x[:1], w, padding=1)  # fewer images than threads: GEMM
    assert _core.cpu_direct_conv_calls() == before + 2


def test_unknown_algorithm_is_refused(algorithm):
    with pytest.raises(ValueError, match="'auto', 'gemm' or 'direct'"):
        convnet.set_cpu_conv_algorithm("winograd")
