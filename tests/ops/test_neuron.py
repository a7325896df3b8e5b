"""cuda-convnet's neurons against the reference and finite differences."""

import numpy as np
import pytest

import convnet.ops as ops
from helpers import assert_close, f32, gradcheck
from reference import neuron as ref

SPECS = ["ident", "relu", "logistic", "tanh[1.7159,0.6667]", "tanh[2,-0.5]", "abs", "square",
         "sqrt", "linear[2,-0.5]", "linear[-1.5,3e-1]", "brelu[1.5]", "softrelu", "log[3]",
         "drelu[0.7]"]
SHAPES = [(1,), (3, 5, 7, 11), (2, 48, 3, 1)]


def _input(spec, shape, rng):
    x = rng.standard_normal(shape) * 2
    if spec == "sqrt":
        x = np.abs(x) + 0.1  # sqrt is defined for x >= 0; its gradient is infinite at 0
    if spec.startswith("log"):
        x = np.maximum(x, -2.5)  # log(3 + x) needs x > -3
    if spec == "softrelu":
        x = np.concatenate([x.ravel()[:-2], [40.0, -40.0]]).reshape(shape) if x.size > 2 else x
    return x


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("shape", SHAPES)
def test_neuron_matches_reference(rng, spec, shape):
    x = f32(_input(spec, shape, rng))[0]
    y = ops.neuron_forward(x, spec)
    assert y.shape == x.shape and y.dtype == np.float32
    assert_close(y, ref.forward(x, spec), what="y")
    dy = f32(rng.standard_normal(shape))[0]
    assert_close(ops.neuron_backward(x, y, dy, spec), ref.backward(x, dy, spec), what="dx")


@pytest.mark.parametrize("spec", SPECS)
def test_neuron_gradcheck(rng, spec):
    shape = (2, 3, 4, 5)
    gradcheck(lambda x: ops.neuron_forward(x, spec),
              lambda x, dy: (ops.neuron_backward(x, ops.neuron_forward(x, spec), dy, spec),),
              [_input(spec, shape, rng)], wrt=[0], rng=rng)


def test_relu_and_brelu_gradient_use_the_output():
    # cuda-convnet: relu passes the gradient where y > 0, brelu where 0 < y < a.
    x = np.array([-1.0, 0.0, 0.5, 1.5, 3.0], np.float32)
    dy = np.ones_like(x)
    np.testing.assert_array_equal(ops.neuron_backward(x, ops.neuron_forward(x, "relu"), dy, "relu"),
                                  [0, 0, 1, 1, 1])
    y = ops.neuron_forward(x, "brelu[1.5]")
    np.testing.assert_array_equal(y, [0, 0, 0.5, 1.5, 1.5])
    np.testing.assert_array_equal(ops.neuron_backward(x, y, dy, "brelu[1.5]"), [0, 0, 1, 0, 0])


def test_softrelu_is_finite_for_large_inputs():
    x = np.array([-100.0, 0.0, 100.0], np.float32)
    y = ops.neuron_forward(x, "softrelu")
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y, [0.0, np.log(2.0), 100.0], rtol=1e-6, atol=1e-30)


def test_parse_neuron():
    assert ops.parse_neuron("relu") == ("relu", 1.0, 0.0)
    assert ops.parse_neuron("tanh[1.7159,0.6667]") == ("tanh", 1.7159, 0.6667)
    assert ops.parse_neuron("linear[2, -1e-2]") == ("linear", 2.0, -0.01)
    for bad in ("relu[1]", "tanh[1]", "brelu", "nosuch", "tanh[a,b]", "brelu[-1]"):
        with pytest.raises(ValueError, match="neuron"):
            ops.parse_neuron(bad)
