"""The oracles every op test uses (STYLE.md item 4):
(a) our float32 CPU result against the independent float64 reference in tests/reference/;
(b) a central-difference gradient check of our backward through our own forward, run in float64;
(c) GPU against CPU, where a GPU is present (tests/ops/test_neuron_gpu.py: only the neuron
    kernels have a CUDA path so far).
"""

import numpy as np

# Relative error of a float32 result against float64: float32 carries ~6e-8 relative rounding per
# operation, and sums of up to a few thousand terms (conv patches, GEMM rows) grow that to ~1e-5
# in the worst case; 1e-4 is the bound and leaves a margin without hiding real bugs.
FP32_REL_TOL = 1e-4
# Central differences in float64 with step 1e-6: truncation ~1e-12, rounding ~1e-10 relative to
# the loss; 1e-5 relative to max(|analytic|, |numeric|, 1) separates those from any real error.
GRAD_STEP = 1e-6
GRAD_TOL = 1e-5
# A kink (relu at 0, a max-pool near-tie) shows as forward and backward one-sided differences
# that disagree by far more than curvature explains; such elements are skipped.
KINK_TOL = 1e-3
# Elements checked per gradient input: enough to catch an indexing bug in any region.
GRAD_SAMPLES = 24


def rel_error(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"shape {got.shape} != reference {want.shape}"
    scale = max(np.abs(want).max(initial=0.0), 1e-30)
    return np.abs(got - want).max(initial=0.0) / scale


def assert_close(got, want, tol=FP32_REL_TOL, what="result"):
    got = np.asarray(got)
    assert not np.isnan(got).any(), f"{what}: NaN in our result"
    err = rel_error(got, want)
    assert err < tol, f"{what}: relative error {err:.3g} >= {tol:g}"


def f32(*arrays):
    return [np.ascontiguousarray(a, dtype=np.float32) for a in arrays]


def f64(*arrays):
    return [np.ascontiguousarray(a, dtype=np.float64) for a in arrays]


def gradcheck(forward, backward, inputs, wrt, rng, samples=GRAD_SAMPLES, max_skipped=0.25):
    """Checks backward against central differences of L = sum(forward(*inputs) * r).

    forward(*inputs) -> y; backward(*inputs, dy) -> tuple of gradients, one per index in `wrt`
    (in that order). inputs are float64 arrays; our ops run in float64 here.
    """
    inputs = [np.array(a, dtype=np.float64) for a in inputs]
    y = forward(*inputs)
    r = rng.standard_normal(y.shape)
    grads = backward(*inputs, r)
    assert len(grads) == len(wrt)

    def loss():
        return float(np.sum(forward(*inputs) * r))

    for which, grad in zip(wrt, grads):
        a = inputs[which]
        assert grad.shape == a.shape, f"gradient of input {which}: {grad.shape} vs {a.shape}"
        flat = a.reshape(-1)
        picks = rng.choice(flat.size, size=min(samples, flat.size), replace=False)
        skipped = 0
        for i in picks:
            original = flat[i]
            flat[i] = original + GRAD_STEP
            up = loss()
            flat[i] = original - GRAD_STEP
            down = loss()
            flat[i] = original
            mid = loss()
            forward_diff, backward_diff = (up - mid) / GRAD_STEP, (mid - down) / GRAD_STEP
            scale = max(abs(forward_diff), abs(backward_diff), 1.0)
            if abs(forward_diff - backward_diff) > KINK_TOL * scale:
                skipped += 1
                continue
            numeric = (up - down) / (2 * GRAD_STEP)
            analytic = grad.reshape(-1)[i]
            scale = max(abs(analytic), abs(numeric), 1.0)
            assert abs(analytic - numeric) <= GRAD_TOL * scale, (
                f"gradient of input {which} at flat index {i}: analytic {analytic:.9g}, "
                f"numeric {numeric:.9g}")
        # A check that skips most elements would prove nothing.
        assert skipped <= max_skipped * len(picks), f"{skipped} of {len(picks)} elements at kinks"
