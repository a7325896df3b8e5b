"""Contrast normalisation within each map (cuda-convnet's cnorm): forward against the reference,
backward (exact, through the local mean) by finite differences in float64 and by a float64
numerical Jacobian-vector product of the reference.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernels (kernels/rnorm.cu) on device
tensors against the CPU path and float64 oracles (the reference's forward; the backward of our CPU
path in float64, checked above) through gpu_helpers.check_within_map_norm, shared with rnorm:
outputs poisoned with NaN, backward with beta_acc 0 (dx poisoned) and 1 (dx accumulated onto),
windows wider than the map and maps spanning several tiles; and the kernel's refusal of a window
that does not fit in shared memory.
"""

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from gpu_helpers import check_within_map_norm, dev, gpu_only, within_map_norm_cases
from helpers import assert_close, f32, gradcheck
from reference import rnorm as ref

PARAMS = [dict(size=3, scale=4.0, pow=0.75, min_div=1.0),
          dict(size=4, scale=8.0, pow=0.6, min_div=2.0),
          dict(size=5, scale=0.001, pow=0.75, min_div=1.0)]


@pytest.mark.parametrize("shape", [(1, 2, 5, 4), (2, 3, 6, 6), (1, 1, 1, 5)])
@pytest.mark.parametrize("params", PARAMS)
def test_cnorm_forward_matches_reference(rng, shape, params):
    x = f32(rng.standard_normal(shape) * 2)[0]
    assert_close(ops.cnorm_forward(x, **params), ref.cnorm_forward(x, **params), what="y")


@pytest.mark.parametrize("params", PARAMS)
def test_cnorm_gradcheck(rng, params):
    gradcheck(lambda x: ops.cnorm_forward(x, **params),
              lambda x, dy: (ops.cnorm_backward(x, ops.cnorm_forward(x, **params), dy,
                                                **params),),
              [rng.standard_normal((2, 2, 5, 4)) * 2], wrt=[0], rng=rng, samples=40)


def test_cnorm_float32_backward_matches_reference_derivative(rng):
    """Our float32 backward against central differences of the float64 reference forward."""
    params = PARAMS[0]
    x = rng.standard_normal((1, 2, 4, 5)) * 2
    dy = rng.standard_normal(x.shape)
    h, numeric = 1e-6, np.empty_like(x)
    for idx in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = ((ref.cnorm_forward(up, **params) - ref.cnorm_forward(down, **params))
                        * dy).sum() / (2 * h)
    x32, dy32 = f32(x, dy)
    got = ops.cnorm_backward(x32, ops.cnorm_forward(x32, **params), dy32, **params)
    assert_close(got, numeric, what="dx")


def test_cnorm_of_a_constant_map_is_x_over_k_pow():
    x = np.full((1, 1, 4, 4), 3.0, np.float32)  # no deviation from the mean anywhere
    np.testing.assert_allclose(ops.cnorm_forward(x, size=3, scale=5.0, pow=0.75, min_div=2.0),
                               3.0 / 2.0 ** 0.75, rtol=1e-6)


@pytest.mark.gpu
@within_map_norm_cases("cnorm")
def test_within_map_norm_gpu(rng, kind, params, shape, beta_acc):
    check_within_map_norm(rng, kind, params, shape, beta_acc)


@pytest.mark.gpu
@gpu_only
def test_within_map_norm_gpu_refuses_a_window_beyond_shared_memory():
    x = np.zeros((1, 1, 300, 300), np.float32)
    with pytest.raises(ValueError, match="cnorm_backward: a window of 200 needs more shared"):
        _core.cnorm_backward(dev(x), dev(x), dev(x), dev(x), 200, 100, 0.1, 0.75, 1.0)
