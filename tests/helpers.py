"""The three oracles every op test uses (docs/design.md, "Testing an op"), the shared odd shapes,
and the named tolerances.

(a) check_op: our float32 CPU result against the independent float64 reference in
    tests/reference/, forward and every backward output;
(b) gradcheck (also run by check_op): central differences of a random projection of OUR forward,
    run in float64, against OUR backward, skipping elements whose perturbation crosses a kink;
(c) check_gpu_vs_cpu: the GPU path against the CPU path on fresh random data where a GPU is
    present; a placeholder that skips until the op-level GPU API exists (see there).
"""

import numpy as np
import pytest

import convnet
import convnet.gradcheck

# ---- tolerances -------------------------------------------------------------------------------

# Relative error of a float32 result against the float64 reference: float32 rounds each operation
# by up to 6e-8, and the longest reductions here (conv patches, GEMM rows, softmax rows of 1000)
# grow that to ~1e-5 in the worst case; 1e-4 leaves a margin without hiding an indexing bug, which
# shows as an O(1) relative error.
FP32_REL_TOL = 1e-4
# Hand-computed expectations and float32-vs-float32 results of the same formula: a handful of
# float32 operations per value, each within half an ulp (6e-8 relative), so 1e-6 of the largest.
HAND_REL_TOL = 1e-6
# Float64 against float64 (the references against each other, our float64 path on a few
# operations): rounding only, ~1e-16 per operation.
FP64_REL_TOL = 1e-12
# The floor of the scale in relative errors, so an all-zero reference compares absolutely.
TINY = 1e-30
# Central differences in float64 with step 1e-6: truncation ~1e-12 and rounding ~1e-10 relative
# to the loss, far below the tolerance; 1e-5 relative to max(|analytic|, |numeric|, 1) separates
# those from any real error, which is O(1) relative.
GRAD_STEP = 1e-6
GRAD_TOL = 1e-5
# A kink the caller did not predict (relu at 0, a max-pool tie) shows as forward and backward
# one-sided differences that disagree by O(slope jump), far more than the ~GRAD_STEP * curvature
# of a smooth function; such elements are skipped too.
KINK_TOL = 1e-3
# Elements checked per gradient input: all of most inputs here, a random 200 of the larger ones
# (oracle (a) compares every element anyway); the whole ops suite stays within seconds.
GRAD_SAMPLES = 200
# A check that skips more than this fraction of its elements as kinks would prove nothing.
MAX_KINK_FRACTION = 0.25
# GPU against CPU, both float32: different summation orders and a few ulp in exp/tanh/log.
GPU_VS_CPU_REL_TOL = 1e-5

# ---- the shared odd shapes --------------------------------------------------------------------

# NCHW inputs every op family draws from: batch 1 and batches > 1; non-square images in both
# orientations with odd and even sides; 3 (RGB), 5 (odd), 48 (AlexNet's per-group conv2 input) and
# 4 channels; 48 and 4 are even so that groups=2 splits them.
ODD_SHAPES = [(1, 3, 7, 5), (2, 5, 6, 9), (2, 48, 5, 4), (3, 4, 10, 7)]
# (kernel, stride, padding) as (h, w) pairs for windowed ops: a square "same" window, then
# non-square kernels, strides and paddings that leave a remainder on most ODD_SHAPES sides (so
# the floor and cuda-convnet size rules differ and the last window overhangs), and a 1x1 kernel
# whose stride 3 jumps past the far edge under cuda-convnet's rule.
ODD_WINDOWS = [((3, 3), (1, 1), (1, 1)), ((2, 3), (2, 1), (0, 1)), ((3, 2), (3, 2), (2, 1)),
               ((1, 1), (2, 3), (0, 0))]


def odd_groups(shape):
    """The group counts to test on a shape: 1, and 2 where the channels split evenly."""
    return (1, 2) if shape[1] % 2 == 0 else (1,)


# ---- small utilities --------------------------------------------------------------------------

def rel_error(got, want):
    """max|got - want| / max(max|want|, TINY)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != reference {want.shape}"
    scale = max(np.abs(want).max(initial=0.0), TINY)
    return np.abs(got - want).max(initial=0.0) / scale


def assert_close(got, want, tol=FP32_REL_TOL, what="result"):
    got = np.asarray(got)
    assert np.isfinite(got).all(), f"{what}: NaN or inf in our result"
    err = rel_error(got, want)
    assert err < tol, f"{what}: relative error {err:.3g} >= {tol:g}"


def f32(*arrays):
    return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]


def f64(*arrays):
    return [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]


def pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# ---- oracle (b): the gradient check -----------------------------------------------------------

def gradcheck(forward, backward, inputs, wrt, rng, samples=GRAD_SAMPLES,
              max_skipped=MAX_KINK_FRACTION, kink=None):
    """Checks OUR backward against central differences of L = sum(forward(*inputs) * r), r random.

    forward(*inputs) -> y; backward(*inputs, dy) -> tuple of gradients, one per index in `wrt`
    (in that order). inputs are copied to float64 and our ops run in float64. kink(inputs, which,
    flat_index, step) -> True skips an element whose +-step perturbation crosses a known kink.
    """
    inputs = [np.array(a, dtype=np.float64) for a in inputs]
    y = np.asarray(forward(*inputs))
    assert y.dtype == np.float64, f"the float64 run returned {y.dtype}"
    r = rng.standard_normal(y.shape)
    grads = backward(*inputs, r)
    assert len(grads) == len(wrt)

    def loss():
        return float(np.sum(forward(*inputs) * r))

    for which, grad in zip(wrt, grads):
        a = inputs[which]
        assert grad.shape == a.shape, f"gradient of input {which}: {grad.shape} vs {a.shape}"
        assert grad.dtype == np.float64, f"gradient of input {which} is {grad.dtype}"
        flat = a.reshape(-1)
        picks = rng.choice(flat.size, size=min(samples, flat.size), replace=False)
        skipped = 0
        mid = loss()
        for i in picks:
            if kink is not None and kink(inputs, which, i, GRAD_STEP):
                skipped += 1
                continue
            original = flat[i]
            flat[i] = original + GRAD_STEP
            up = loss()
            flat[i] = original - GRAD_STEP
            down = loss()
            flat[i] = original
            forward_diff, backward_diff = (up - mid) / GRAD_STEP, (mid - down) / GRAD_STEP
            if abs(forward_diff - backward_diff) > KINK_TOL * max(abs(forward_diff),
                                                                  abs(backward_diff), 1.0):
                skipped += 1
                continue
            numeric = (up - down) / (2 * GRAD_STEP)
            analytic = grad.reshape(-1)[i]
            scale = max(abs(analytic), abs(numeric), 1.0)
            assert abs(analytic - numeric) <= GRAD_TOL * scale, (
                f"gradient of input {which} at {np.unravel_index(i, a.shape)}: analytic "
                f"{analytic:.9g}, numeric {numeric:.9g}")
        assert skipped <= max_skipped * len(picks), f"{skipped} of {len(picks)} elements at kinks"


# ---- oracle (a), with (b): one op on one case --------------------------------------------------

def check_op(forward, backward, ref_forward, ref_backward, inputs, *, rng, wrt=(0,), names=None,
             grad_inputs=None, kink=None, tol=FP32_REL_TOL):
    """Oracles (a) and (b) for one op on one case; returns our float32 (y, grads).

    forward(*inputs) -> y and backward(*inputs, dy) -> a tuple of gradients w.r.t. inputs[i] for
    i in wrt: thin wrappers over OUR op (a backward that takes y computes it with forward);
    ref_forward / ref_backward: the same signatures over the float64 reference. Non-array
    arguments (labels, hyper-parameters) are bound in the wrappers.

    (a) runs ours on the inputs rounded to float32 and the reference on those same values in
        float64, and compares y and every gradient under `tol` (FP32_REL_TOL unless a caller
        names a reason for another);
    (b) runs gradcheck on grad_inputs (default: inputs) in float64, or not at all if
        grad_inputs is False.
    """
    x32 = f32(*inputs)
    x64 = f64(*x32)  # the reference sees exactly the values ours saw
    names = names or [f"d(input {i})" for i in wrt]

    y = forward(*x32)
    want = ref_forward(*x64)
    assert y.dtype == np.float32, f"forward returned {y.dtype} for float32 inputs"
    assert y.shape == want.shape, f"forward shape {y.shape} != reference {want.shape}"
    assert_close(y, want, tol, what="forward")

    dy = rng.standard_normal(y.shape).astype(np.float32)
    grads = backward(*x32, dy)
    want_grads = ref_backward(*x64, dy.astype(np.float64))
    assert len(grads) == len(wrt) == len(want_grads)
    for name, i, got, ref in zip(names, wrt, grads, want_grads):
        assert got.dtype == np.float32, f"{name}: {got.dtype} for float32 inputs"
        assert got.shape == x32[i].shape, f"{name}: shape {got.shape} != input {x32[i].shape}"
        assert_close(got, ref, tol, what=name)

    if grad_inputs is not False:
        gradcheck(forward, backward, inputs if grad_inputs is None else grad_inputs, wrt, rng,
                  kink=kink)
    return y, grads


# ---- oracle (c): GPU against CPU --------------------------------------------------------------

def check_gpu_vs_cpu(op, cpu_fn, gpu_fn, inputs, tol=GPU_VS_CPU_REL_TOL):
    """Compares gpu_fn(*inputs) with cpu_fn(*inputs) (float32 numpy in, numpy or tuples of numpy
    out) on fresh random data, under tol (0: bit for bit). Tests calling it carry the gpu marker,
    so it only runs where convnet.cuda_device_count() > 0.

    Placeholder: the op-level GPU API (device tensors in and out of every op) is a later issue,
    so every caller passes gpu_fn=None for now and this skips, naming the op; wiring an op means
    passing its GPU call here. (The kernels themselves, through their device-tensor bindings, are
    compared with the CPU by the gpu-marked tests in each tests/ops/test_<op>.py.)
    """
    if convnet.cuda_device_count() == 0:
        pytest.skip("needs an NVIDIA GPU")
    if gpu_fn is None:
        pytest.skip(f"{op}: no GPU op API yet (a later issue)")
    want, got = cpu_fn(*inputs), gpu_fn(*inputs)
    want = want if isinstance(want, tuple) else (want,)
    got = got if isinstance(got, tuple) else (got,)
    for i, (g, w) in enumerate(zip(got, want)):
        if tol == 0:  # bit-exact, e.g. dropout masks
            np.testing.assert_array_equal(g, w, err_msg=f"{op} output {i}: GPU vs CPU")
        else:
            assert_close(g, w, tol, what=f"{op} output {i}: GPU vs CPU")


def check_net_gradients(net, x, labels, rng, names=None, samples=6):
    """Central differences of net.objective w.r.t. `samples` random elements of each named
    parameter (all of them by default) against net.gradients (convnet.gradcheck), in the net's
    dtype (float64 for these checks), within GRAD_TOL of max(|analytic|, |numeric|, 1)."""
    check = convnet.gradcheck.check_net_gradients(net, x, labels, rng, names=names,
                                                  samples=samples, step=GRAD_STEP)
    for s in check.samples:
        assert s.relative_error(floor=1.0) <= GRAD_TOL, (
            f"{s.name}[{s.index}]: analytic {s.analytic}, numeric {s.numeric}")
    return check.gradients
