"""The CUDA GEMM and convolution kernels (kernels/gemm.cuh, fc.cu, conv_forward.cu,
conv_backward_data.cu, conv_backward_filter.cu) and the locally connected kernels (local.cu) on
device tensors, against the float64 references and the CPU path (runs only where a GPU is).

Every math precision is tried: fp32 (CUDA cores) against FP32_REL_TOL, tf32 and bf16 (tensor cores,
FP32 accumulation; plain FP32 below sm_80, which passes the same looser bounds) against
TF32_REL_TOL and BF16_REL_TOL, each relative to the reference's largest magnitude per output.
Outputs are poisoned with NaN before each launch, so an element a kernel fails to write cannot
pass; backward runs with beta=0 (gradients poisoned too: a kernel that reads them leaks NaN) and
beta=1 (they start random and must come back as old + gradient). Shapes are odd on purpose: M, N
and K that are not multiples of the 128x128x16 tiles (1, 7, 33, 130, 2000), batch 1 and 3, 5 and 17
channels, non-square images, strides and paddings that do not divide evenly, cuda-convnet's
overhanging last windows, groups; sizes that make the kernels split K (fc's long K, conv's
backward filter over many positions) and AlexNet's conv2 and fc6 at batch 8.
"""

import zlib

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from gpu_helpers import BF16_REL_TOL, FP32_REL_TOL, TF32_REL_TOL, assert_close, dev, host, poisoned
from reference import conv as conv_ref
from reference import fc as fc_ref
from reference import local as local_ref

pytestmark = [pytest.mark.gpu]

PRECISIONS = ["fp32", "tf32", "bf16"]
TOLERANCE = {"fp32": FP32_REL_TOL, "tf32": TF32_REL_TOL, "bf16": BF16_REL_TOL}
BETAS = [0.0, 1.0]


@pytest.fixture(params=PRECISIONS)
def precision(request):
    """Runs the test under one math precision and restores the previous one."""
    previous = _core.get_math_precision()
    _core.set_math_precision(request.param)
    yield request.param
    _core.set_math_precision(previous)


def _rng(*key):
    """A generator seeded by the key (crc32 of its repr: stable across processes)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _f32(rng, shape):
    return rng.standard_normal(shape).astype(np.float32)


# Float64 references are slow on the big shapes: computed once per case and shared by the
# precisions and betas.
_REFERENCE_CACHE = {}


def _cached(key, fn):
    if key not in _REFERENCE_CACHE:
        _REFERENCE_CACHE[key] = fn()
    return _REFERENCE_CACHE[key]


def _gradient_out(shape, old, beta):
    """A gradient output for the GPU: poisoned for beta 0, `old` for accumulation."""
    return poisoned(shape) if beta == 0 else dev(old)


def _expected(grad, old, beta):
    return grad if beta == 0 else beta * old.astype(np.float64) + grad


# ---- fully connected -----------------------------------------------------------------------------

# (x shape, outputs): K = prod(x.shape[1:]). Single rows and columns, sizes either side of the
# 128-wide tiles, a 4-D x read as (N, K), K = 2000 (split into K slices when the output is small),
# and fc6 at batch 8 (9216 -> 4096: a small output and a long K, also split).
FC_CASES = [((1, 7), 33), ((7, 33), 1), ((3, 130), 7), ((130, 9), 5), ((1, 1), 1),
            ((33, 129), 130), ((3, 5, 3, 4), 17), ((7, 2000), 130), ((8, 9216), 4096)]


def _fc_id(case):
    xs, m = case
    return f"x{'x'.join(map(str, xs))}-m{m}"


def _fc_case(case):
    xs, m = case
    k = int(np.prod(xs[1:]))
    rng = _rng("fc", xs, m)
    x, w, b, dy = _f32(rng, xs), _f32(rng, (m, k)), _f32(rng, m), _f32(rng, (xs[0], m))
    y_ref = _cached(("fc-y", xs, m), lambda: fc_ref.forward(x, w, b))
    grads = _cached(("fc-grad", xs, m), lambda: fc_ref.backward(x, w, dy))
    return x, w, b, dy, y_ref, grads


@pytest.mark.parametrize("case", FC_CASES, ids=_fc_id)
def test_fc_forward(precision, case):
    x, w, b, _, y_ref, _ = _fc_case(case)
    tol = TOLERANCE[precision]
    ty = poisoned(y_ref.shape)
    _core.fc_forward(dev(x), dev(w), dev(b), ty)
    y = host(ty)
    assert_close(y, y_ref, tol, what=f"fc y ({precision}) vs float64")
    assert_close(y, ops.fc_forward(x, w, b), tol, what=f"fc y ({precision}) vs CPU")
    # Without a bias.
    ty = poisoned(y_ref.shape)
    _core.fc_forward(dev(x), dev(w), None, ty)
    assert_close(host(ty), y_ref - b.astype(np.float64), tol, what="fc y without bias")


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("case", FC_CASES, ids=_fc_id)
def test_fc_backward(precision, case, beta):
    x, w, b, dy, _, (dx_ref, dw_ref, db_ref) = _fc_case(case)
    tol = TOLERANCE[precision]
    rng = _rng("fc-old", case, beta)
    olds = [_f32(rng, a.shape) for a in (dx_ref, dw_ref, db_ref)]
    outs = [_gradient_out(a.shape, old, beta) for a, old in zip((dx_ref, dw_ref, db_ref), olds)]
    _core.fc_backward(dev(x), dev(w), dev(dy), *outs, beta=beta)
    cpu = ops.fc_backward(x, w, dy)
    for name, out, ref, old, c in zip(("dx", "dw", "db"), outs, (dx_ref, dw_ref, db_ref), olds,
                                      cpu):
        got = host(out)
        assert_close(got, _expected(ref, old, beta), tol,
                     what=f"fc {name} ({precision}, beta={beta}) vs float64")
        assert_close(got, _expected(c, old, beta), tol,
                     what=f"fc {name} ({precision}, beta={beta}) vs CPU")


def test_fc_backward_skips_undefined_gradients():
    x, w, b, dy, _, (dx_ref, dw_ref, db_ref) = _fc_case(((3, 130), 7))
    tdw = poisoned(dw_ref.shape)
    _core.fc_backward(dev(x), dev(w), dev(dy), None, tdw, None)
    assert_close(host(tdw), dw_ref, FP32_REL_TOL, what="fc dw alone")
    tdx, tdb = poisoned(dx_ref.shape), poisoned(db_ref.shape)
    _core.fc_backward(dev(x), dev(w), dev(dy), tdx, None, tdb)
    assert_close(host(tdx), dx_ref, FP32_REL_TOL, what="fc dx without dw")
    assert_close(host(tdb), db_ref, FP32_REL_TOL, what="fc db without dw")


# ---- convolution ---------------------------------------------------------------------------------

# (x shape, filters, kernel, stride, padding, groups, rule)
CONV_CASES = [
    ((1, 5, 9, 13), 6, (3, 3), (2, 2), (1, 1), 1, "floor"),
    ((3, 17, 9, 13), 7, (3, 3), (2, 2), (1, 1), 1, "floor"),
    ((3, 17, 9, 13), 7, (3, 3), (1, 1), (1, 1), 1, "floor"),
    ((1, 5, 9, 13), 6, (5, 5), (3, 3), (0, 0), 1, "cuda-convnet"),    # last windows overhang
    ((3, 10, 9, 13), 6, (5, 5), (3, 3), (0, 0), 2, "cuda-convnet"),   # overhang and groups 2
    ((3, 10, 13, 9), 34, (3, 3), (2, 2), (1, 1), 2, "floor"),
    ((3, 5, 9, 13), 130, (1, 1), (1, 1), (0, 0), 1, "floor"),         # 130 filters: two M tiles
    ((2, 6, 7, 8), 4, (3, 2), (1, 2), (0, 1), 2, "cuda-convnet"),     # non-square kernel
    ((1, 3, 224, 224), 96, (11, 11), (4, 4), (0, 0), 1, "cuda-convnet"),  # conv1: 55x55
    ((2, 3, 40, 37), 8, (3, 3), (1, 1), (1, 1), 1, "floor"),          # backward filter splits K
    ((8, 96, 27, 27), 256, (5, 5), (1, 1), (2, 2), 2, "floor"),       # AlexNet conv2, batch 8
]


def _conv_id(case):
    xs, f, k, s, p, g, rule = case
    return (f"x{'x'.join(map(str, xs))}-f{f}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}-g{g}-"
            f"{rule}")


def _conv_case(case):
    xs, f, kernel, stride, padding, groups, rule = case
    oh = conv_ref.output_size(xs[2], kernel[0], stride[0], padding[0], rule)
    ow = conv_ref.output_size(xs[3], kernel[1], stride[1], padding[1], rule)
    rng = _rng("conv", case)
    x = _f32(rng, xs)
    w = _f32(rng, (f, xs[1] // groups) + kernel)
    b = _f32(rng, f)
    dy = _f32(rng, (xs[0], f, oh, ow))
    y_ref = _cached(("conv-y", case),
                    lambda: conv_ref.forward(x, w, b, stride, padding, groups, oh, ow))
    grads = _cached(("conv-grad", case),
                    lambda: conv_ref.backward(x, w, dy, stride, padding, groups))
    geometry = (stride[0], stride[1], padding[0], padding[1], groups)
    cpu_kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)
    return x, w, b, dy, y_ref, grads, geometry, cpu_kw


@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv_forward(precision, case):
    x, w, b, _, y_ref, _, geometry, cpu_kw = _conv_case(case)
    tol = TOLERANCE[precision]
    ty = poisoned(y_ref.shape)
    _core.conv_forward(dev(x), dev(w), dev(b), ty, *geometry)
    y = host(ty)
    assert_close(y, y_ref, tol, what=f"conv y ({precision}) vs float64")
    assert_close(y, ops.conv_forward(x, w, b, **cpu_kw), tol, what=f"conv y ({precision}) vs CPU")
    ty = poisoned(y_ref.shape)
    _core.conv_forward(dev(x), dev(w), None, ty, *geometry)
    assert_close(host(ty), y_ref - b.astype(np.float64)[None, :, None, None], tol,
                 what=f"conv y without bias ({precision})")


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("case", CONV_CASES, ids=_conv_id)
def test_conv_backward(precision, case, beta):
    x, w, b, dy, _, (dx_ref, dw_ref, db_ref), geometry, cpu_kw = _conv_case(case)
    tol = TOLERANCE[precision]
    rng = _rng("conv-old", case, beta)
    olds = [_f32(rng, a.shape) for a in (dx_ref, dw_ref, db_ref)]
    outs = [_gradient_out(a.shape, old, beta) for a, old in zip((dx_ref, dw_ref, db_ref), olds)]
    _core.conv_backward(dev(x), dev(w), dev(dy), *outs, *geometry, beta=beta)
    cpu = ops.conv_backward(x, w, dy, **cpu_kw)
    for name, out, ref, old, c in zip(("dx", "dw", "db"), outs, (dx_ref, dw_ref, db_ref), olds,
                                      cpu):
        got = host(out)
        assert_close(got, _expected(ref, old, beta), tol,
                     what=f"conv {name} ({precision}, beta={beta}) vs float64")
        assert_close(got, _expected(c, old, beta), tol,
                     what=f"conv {name} ({precision}, beta={beta}) vs CPU")


def test_conv_backward_skips_undefined_gradients():
    case = CONV_CASES[4]
    x, w, b, dy, _, (dx_ref, dw_ref, db_ref), geometry, _ = _conv_case(case)
    tdw = poisoned(dw_ref.shape)
    _core.conv_backward(dev(x), dev(w), dev(dy), None, tdw, None, *geometry)
    assert_close(host(tdw), dw_ref, FP32_REL_TOL, what="conv dw alone")
    tdx, tdb = poisoned(dx_ref.shape), poisoned(db_ref.shape)
    _core.conv_backward(dev(x), dev(w), dev(dy), tdx, None, tdb, *geometry)
    assert_close(host(tdx), dx_ref, FP32_REL_TOL, what="conv dx without dw")
    assert_close(host(tdb), db_ref, FP32_REL_TOL, what="conv db without dw")


def test_conv_backward_filter_is_deterministic():
    """The split-K backward filter sums its slices in a fixed order: bit-identical reruns."""
    x, w, b, dy, _, (dx_ref, dw_ref, db_ref), geometry, _ = _conv_case(CONV_CASES[-1])
    tx, tw, tdy = dev(x), dev(w), dev(dy)
    runs = []
    for _ in range(2):
        tdw, tdb = poisoned(dw_ref.shape), poisoned(db_ref.shape)
        _core.conv_backward(tx, tw, tdy, None, tdw, tdb, *geometry)
        runs.append((host(tdw), host(tdb)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])


# ---- locally connected ---------------------------------------------------------------------------

LOCAL_CASES = [c for c in CONV_CASES if c[0][2] * c[0][3] <= 9 * 13 and c[1] <= 34]


@pytest.mark.parametrize("beta", BETAS)
@pytest.mark.parametrize("case", LOCAL_CASES, ids=_conv_id)
def test_local(case, beta):
    """Locally connected forward and backward (always FP32 on the GPU)."""
    xs, f, kernel, stride, padding, groups, rule = case
    oh = conv_ref.output_size(xs[2], kernel[0], stride[0], padding[0], rule)
    ow = conv_ref.output_size(xs[3], kernel[1], stride[1], padding[1], rule)
    rng = _rng("local", case)
    x = _f32(rng, xs)
    w = _f32(rng, (oh, ow, f, xs[1] // groups) + kernel)
    b = _f32(rng, (f, oh, ow))
    dy = _f32(rng, (xs[0], f, oh, ow))
    geometry = (stride[0], stride[1], padding[0], padding[1], groups)
    cpu_kw = dict(stride=stride, padding=padding, groups=groups, rule=rule)

    y_ref = local_ref.forward(x, w, b, stride, padding, groups)
    ty = poisoned(y_ref.shape)
    _core.local_forward(dev(x), dev(w), dev(b), ty, *geometry)
    assert_close(host(ty), y_ref, FP32_REL_TOL, what="local y vs float64")
    assert_close(host(ty), ops.local_forward(x, w, b, **cpu_kw), FP32_REL_TOL,
                 what="local y vs CPU")

    refs = local_ref.backward(x, w, dy, stride, padding, groups)
    olds = [_f32(rng, a.shape) for a in refs]
    outs = [_gradient_out(a.shape, old, beta) for a, old in zip(refs, olds)]
    _core.local_backward(dev(x), dev(w), dev(dy), *outs, *geometry, beta=beta)
    cpu = ops.local_backward(x, w, dy, **cpu_kw)
    for name, out, ref, old, c in zip(("dx", "dw", "db"), outs, refs, olds, cpu):
        got = host(out)
        assert_close(got, _expected(ref, old, beta), FP32_REL_TOL,
                     what=f"local {name} (beta={beta}) vs float64")
        assert_close(got, _expected(c, old, beta), FP32_REL_TOL,
                     what=f"local {name} (beta={beta}) vs CPU")


# ---- the precision setting -----------------------------------------------------------------------

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
