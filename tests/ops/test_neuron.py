"""cuda-convnet's neurons, every one including the parameterised ones: the float64 reference and
finite differences (skipping the kinks of relu, abs and brelu) on the shared odd shapes, the
gradient rules stated on y, and the spec parser.

The GPU part (marked gpu; skipped where no GPU is; CONVNET_GPU_TESTS_DEVICE=cpu runs its code on
CPU tensors) runs the CUDA neuron kernels on device tensors against the CPU path. Outputs are poisoned with NaN
before each launch, so an element the kernel fails to write cannot pass. float32 on both sides with
the same formulas (csrc/math/neuron_math.h): the GPU's exp/tanh/log differ from glibc's by a few
ulp, hence GPU_VS_CPU_REL_TOL.
"""

import numpy as np
import pytest

import convnet.ops as ops
from convnet import _core
from gpu_helpers import dev, host, poisoned
from helpers import (GPU_VS_CPU_REL_TOL, HAND_REL_TOL, ODD_SHAPES, assert_close, check_gpu_vs_cpu,
                     check_op, f32, gradcheck)
from reference import neuron as ref

SPECS = ["ident", "relu", "logistic", "tanh[1.7159,0.6667]", "tanh[2,-0.5]", "abs", "square",
         "sqrt", "linear[2,-0.5]", "linear[-1.5,3e-1]", "brelu[1.5]", "softrelu", "log[3]",
         "log[0.5]", "drelu[0.7]"]
SHAPES = [(1,), (7, 13)] + ODD_SHAPES


def _input(spec, shape, rng):
    x = rng.standard_normal(shape) * 2
    if spec == "sqrt":
        x = np.abs(x) + 0.1  # defined for x >= 0, with an infinite slope at 0
    if spec.startswith("log["):
        a = float(spec[4:-1])
        x = np.maximum(x, -a + 0.2)  # log(a + x) needs x > -a
    if spec == "softrelu" and x.size > 2:
        x.reshape(-1)[-2:] = [30.0, -30.0]  # where a naive log(1 + e^x) loses its precision
    return x


def _kink(spec):
    points = ref.kinks(spec)
    if not points:
        return None
    return lambda inputs, which, i, step: any(abs(inputs[0].reshape(-1)[i] - k) <= step
                                              for k in points)


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_neuron_three_oracles(rng, spec, shape):
    y, _ = check_op(lambda x: ops.neuron_forward(x, spec),
                    lambda x, dy: (ops.neuron_backward(x, ops.neuron_forward(x, spec), dy, spec),),
                    lambda x: ref.forward(x, spec),
                    lambda x, dy: (ref.backward(x, dy, spec),),
                    [_input(spec, shape, rng)], rng=rng, names=("dx",), kink=_kink(spec),
                    grad_inputs=[_input(spec, (2, 3, 2, 5), rng)] if len(shape) == 4 else None)
    assert y.shape == shape


@pytest.mark.parametrize("spec", ["relu", "abs", "brelu[1.5]"])
def test_gradcheck_skips_inputs_on_the_kinks(rng, spec):
    # Inputs placed exactly on each kink: the check must skip those and pass on the rest.
    x = _input(spec, (4, 10), rng)
    x[0, :2] = ref.kinks(spec)[0]
    x[1, :2] = ref.kinks(spec)[-1]
    gradcheck(lambda x: ops.neuron_forward(x, spec),
              lambda x, dy: (ops.neuron_backward(x, ops.neuron_forward(x, spec), dy, spec),),
              [x], wrt=[0], rng=rng, samples=40, kink=_kink(spec))


def test_relu_and_brelu_gradients_follow_y():
    # Spec: relu passes dy where y > 0; brelu where 0 < y < a (so not at 0 or a themselves).
    x = np.array([-1.0, 0.0, 0.5, 1.5, 3.0], np.float32)
    dy = np.full_like(x, 2.0)
    y = ops.neuron_forward(x, "relu")
    np.testing.assert_array_equal(y, [0, 0, 0.5, 1.5, 3.0])
    np.testing.assert_array_equal(ops.neuron_backward(x, y, dy, "relu"), [0, 0, 2, 2, 2])
    y = ops.neuron_forward(x, "brelu[1.5]")
    np.testing.assert_array_equal(y, [0, 0, 0.5, 1.5, 1.5])
    np.testing.assert_array_equal(ops.neuron_backward(x, y, dy, "brelu[1.5]"), [0, 0, 2, 0, 0])


def test_parameterised_neurons_use_their_parameters():
    x = np.array([-2.0, -0.5, 0.0, 0.25, 1.0, 4.0], np.float32)
    x64 = x.astype(np.float64)
    want = {
        "tanh[2,0.5]": 2 * np.tanh(0.5 * x64), "tanh[1,1]": np.tanh(x64),
        "linear[3,-1]": 3 * x64 - 1, "linear[0.5,2]": 0.5 * x64 + 2,
        "brelu[0.3]": np.clip(x64, 0, 0.3), "brelu[6]": np.clip(x64, 0, 6),
        "log[2.5]": np.log(2.5 + x64), "drelu[2]": x64 - 2 * np.tanh(x64 / 2),
    }
    for spec, expected in want.items():
        assert_close(ops.neuron_forward(x, spec), expected, HAND_REL_TOL, what=spec)


def test_softrelu_is_finite_for_large_inputs():
    x = np.array([-100.0, 0.0, 100.0], np.float32)
    y = ops.neuron_forward(x, "softrelu")
    assert np.isfinite(y).all()
    assert_close(y, [0.0, np.log(2.0), 100.0], HAND_REL_TOL, what="softrelu")


def test_parse_neuron():
    assert ops.parse_neuron("relu") == ("relu", 1.0, 0.0)
    assert ops.parse_neuron("tanh[1.7159,0.6667]") == ("tanh", 1.7159, 0.6667)
    assert ops.parse_neuron("linear[2, -1e-2]") == ("linear", 2.0, -0.01)
    assert ops.parse_neuron("brelu[6]")[:2] == ("brelu", 6.0)
    for bad in ("relu[1]", "tanh[1]", "tanh", "linear[1,2,3]", "brelu", "nosuch", "tanh[a,b]",
                "brelu[-1]", "", "RELU"):
        with pytest.raises(ValueError, match="neuron"):
            ops.parse_neuron(bad)


def test_reference_derivatives_match_their_forward(rng):
    for spec in SPECS:
        gradcheck(lambda x: ref.forward(x, spec), lambda x, dy: (ref.backward(x, dy, spec),),
                  [_input(spec, (3, 8), rng)], wrt=[0], rng=rng, kink=_kink(spec))


@pytest.mark.gpu
def test_neuron_gpu_matches_cpu(rng):
    x = f32(rng.standard_normal((2, 5, 6, 9)))[0]
    check_gpu_vs_cpu("neuron_forward", lambda x: ops.neuron_forward(x, "relu"), None, [x])


# ---- the CUDA kernels ------------------------------------------------------------------------

GPU_SPECS = ["ident", "relu", "logistic", "tanh[1.7159,0.6667]", "abs", "square", "sqrt",
             "linear[2,-0.5]", "brelu[1.5]", "softrelu", "log[3]", "drelu[0.7]"]


@pytest.mark.gpu
@pytest.mark.parametrize("spec", GPU_SPECS)
@pytest.mark.parametrize("shape", [(1,), (3, 5, 7, 11), (2, 96, 55, 55)])
def test_neuron_gpu_kernels_match_cpu(rng, spec, shape):
    x, dy = f32(_input(spec, shape, rng), rng.standard_normal(shape))
    name, a, b = ops.parse_neuron(spec)

    y_cpu = ops.neuron_forward(x, spec)
    dx_cpu = ops.neuron_backward(x, y_cpu, dy, spec)

    tx, ty = dev(x), poisoned(shape)
    _core.neuron_forward(tx, ty, name, a, b)
    tdx = poisoned(shape)
    _core.neuron_backward(tx, ty, dev(dy), tdx, name, a, b)
    assert_close(host(ty), y_cpu, GPU_VS_CPU_REL_TOL, what="y: GPU vs CPU")
    assert_close(host(tdx), dx_cpu, GPU_VS_CPU_REL_TOL, what="dx: GPU vs CPU")
