"""Same-map response normalisation (cuda-convnet's rnorm) against the reference and finite
differences.

The GPU part (marked gpu: runs where a GPU is) runs the CUDA kernels (kernels/rnorm.cu) on device
tensors against the CPU path and the float64 reference (gpu_helpers.check_within_map_norm, shared
with cnorm): outputs poisoned with NaN before each launch, so an element the kernel fails to write
cannot pass; backward with beta_acc=0 (dx poisoned: a kernel that reads it leaks NaN) and
beta_acc=1 (dx starts random and must come back as dx + gradient); windows wider than the map,
off-centre windows (against the CPU path only), and maps spanning several tiles with partial ones
at the far edges.
"""

import numpy as np
import pytest

import convnet.ops as ops
from gpu_helpers import check_within_map_norm, within_map_norm_cases
from helpers import assert_close, f32, gradcheck
from reference import rnorm as ref

SHAPES = [(1, 3, 5, 4), (2, 2, 7, 7), (1, 5, 1, 6), (2, 1, 3, 3)]
PARAMS = [dict(size=3, scale=0.00005, pow=0.75, min_div=1.0),
          dict(size=3, scale=4.0, pow=0.75, min_div=1.0),
          dict(size=4, scale=6.0, pow=0.6, min_div=2.0),
          dict(size=5, scale=9.0, pow=1.2, min_div=0.5)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("params", PARAMS)
def test_rnorm_matches_reference(rng, shape, params):
    x = f32(rng.standard_normal(shape) * 2)[0]
    y = ops.rnorm_forward(x, **params)
    assert_close(y, ref.forward(x, **params), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    assert_close(ops.rnorm_backward(x, y, dy, **params), ref.backward(x, dy, **params), what="dx")


@pytest.mark.parametrize("params", PARAMS)
def test_rnorm_gradcheck(rng, params):
    gradcheck(lambda x: ops.rnorm_forward(x, **params),
              lambda x, dy: (ops.rnorm_backward(x, ops.rnorm_forward(x, **params), dy,
                                                **params),),
              [rng.standard_normal((2, 2, 5, 4)) * 2], wrt=[0], rng=rng)


def test_rnorm_window_is_the_maps_own():
    x = np.zeros((1, 2, 3, 3), np.float32)
    x[0, 0, 1, 1] = 1.0
    x[0, 1] = 10.0  # another map: must not enter map 0's sums
    y = ops.rnorm_forward(x, size=3, scale=9.0, pow=1.0, min_div=1.0)
    np.testing.assert_allclose(y[0, 0, 1, 1], 1.0 / (1 + 1), rtol=1e-6)


def test_rnorm_bad_arguments():
    x = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="rnorm_forward: size must be >= 1"):
        ops.rnorm_forward(x, size=0, scale=1, pow=1)
    with pytest.raises(ValueError, match="rnorm_backward: dy must have the shape"):
        ops.rnorm_backward(x, x, np.zeros((1, 1, 3, 2), np.float32), size=3, scale=1, pow=1)


@pytest.mark.gpu
@within_map_norm_cases("rnorm")
def test_within_map_norm_gpu(rng, kind, params, shape, beta_acc):
    check_within_map_norm(rng, kind, params, shape, beta_acc)
