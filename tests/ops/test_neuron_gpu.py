"""The CUDA neuron kernels against the CPU path, on device tensors (runs only where a GPU is).

Outputs are poisoned with NaN before each launch so that an element the kernel fails to write
cannot pass. float32 on both sides with the same formulas (csrc/math/neuron_math.h): the GPU's
exp/tanh/log differ from glibc's by a few ulp, hence a small relative tolerance.
"""

import numpy as np
import pytest

import convnet
import convnet.ops as ops
from convnet import _core

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(convnet.cuda_device_count() == 0, reason="needs a GPU")]

# A few ulp of float32 for the transcendental neurons; exact ones match to rounding.
GPU_VS_CPU_REL_TOL = 1e-5

SPECS = ["ident", "relu", "logistic", "tanh[1.7159,0.6667]", "abs", "square", "sqrt",
         "linear[2,-0.5]", "brelu[1.5]", "softrelu", "log[3]", "drelu[0.7]"]


def _input(spec, shape, rng):
    x = rng.standard_normal(shape).astype(np.float32) * 2
    if spec in ("sqrt",):
        x = np.abs(x) + 0.1
    if spec.startswith("log"):
        x = np.maximum(x, -2.5)
    return x


def _poisoned(shape):
    return convnet.Tensor.from_numpy(np.full(shape, np.nan, dtype=np.float32), "cuda:0")


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("shape", [(1,), (3, 5, 7, 11), (2, 96, 55, 55)])
def test_neuron_gpu_matches_cpu(spec, shape):
    rng = np.random.default_rng(hash((spec, shape)) % 2**32)
    x = _input(spec, shape, rng)
    dy = rng.standard_normal(shape).astype(np.float32)
    name, a, b = ops.parse_neuron(spec)

    y_cpu = ops.neuron_forward(x, spec)
    dx_cpu = ops.neuron_backward(x, y_cpu, dy, spec)

    tx = convnet.Tensor.from_numpy(x, "cuda:0")
    ty = _poisoned(shape)
    _core.neuron_forward(tx, ty, name, a, b)
    y_gpu = ty.to("cpu").numpy()
    tdx = _poisoned(shape)
    _core.neuron_backward(tx, ty, convnet.Tensor.from_numpy(dy, "cuda:0"), tdx, name, a, b)
    dx_gpu = tdx.to("cpu").numpy()

    for got, want in ((y_gpu, y_cpu), (dx_gpu, dx_cpu)):
        assert not np.isnan(got).any()
        scale = max(np.abs(want).max(), 1e-30)
        assert np.abs(got - want).max() / scale < GPU_VS_CPU_REL_TOL
