"""conv and local layers with several inputs (each its own filterSize, stride, padding and
weights, outputs summed) and conv with sharedBiases=0 (a bias per filter and position): forward
against the float64 references, a whole-net finite-difference gradient check, and the errors."""

import numpy as np
import pytest

import convnet
from helpers import check_net_gradients
from nets import build_net, cfg, classifier
from reference import conv as ref_conv

LAYERS = classifier("3,9,8", """
[conv_a] type=conv inputs=data channels=3 filters=4 filterSize=3 padding=1 stride=2 initW=0.3
         neuron=tanh[1,1]
[mix] type=conv inputs=data,conv_a channels=3,4 filters=2 filterSize=3,1 padding=1,0 stride=2,1
      sharedBiases=0 initW=0.3,0.4 initB=0.1 neuron=logistic
[loc] type=local inputs=mix,conv_a channels=2,4 filters=3 filterSize=3,3 padding=1,1 stride=2,2
      initW=0.3,0.2
[fc] type=fc inputs=loc outputs=4 initW=0.5
""")

PARAMS = cfg("""
[conv_a] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[mix] epsW=0.1,0.1 epsB=0.1 momW=0.9,0.9 momB=0.9
[loc] epsW=0.1,0.1 epsB=0.1 momW=0.9,0.9 momB=0.9
[fc] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[logprob] coeff=1
""")


def build(layers=LAYERS, dtype="float64"):
    return build_net(layers, PARAMS, dtype=dtype, seed=4)


def randomise(net, rng):
    for name, value in net.params.items():
        net.params[name] = rng.standard_normal(value.shape) * 0.3


def test_shapes_and_parameters():
    net = build()
    p = net.params
    assert net.output_shape("mix") == (2, 5, 5)
    assert p["mix.weights"].shape == (2, 3, 3, 3)
    assert p["mix.weights.1"].shape == (2, 4, 1, 1)
    assert p["mix.biases"].shape == (2, 5, 5)          # sharedBiases=0
    assert p["loc.weights"].shape == (3, 3, 3, 2, 3, 3)
    assert p["loc.weights.1"].shape == (3, 3, 3, 4, 3, 3)
    np.testing.assert_array_equal(p["mix.biases"], 0.1)
    assert abs(p["mix.weights.1"].std() - 0.4) < 0.25    # initW per input


def test_forward_is_the_sum_of_per_input_convolutions(rng):
    net = build()
    randomise(net, rng)
    x = rng.standard_normal((2, 3, 9, 8))
    p = net.params
    a = np.tanh(ref_conv.forward(x, p["conv_a.weights"], p["conv_a.biases"], (2, 2), (1, 1), 1,
                                 5, 5))
    pre = (ref_conv.forward(x, p["mix.weights"], None, (2, 2), (1, 1), 1, 5, 5) +
           ref_conv.forward(a, p["mix.weights.1"], None, (1, 1), (0, 0), 1, 5, 5) +
           p["mix.biases"])
    want = 1 / (1 + np.exp(-pre))
    np.testing.assert_allclose(net.features(x, layer="mix_neuron"), want, rtol=1e-10, atol=1e-12)


def test_whole_net_gradient_check(rng):
    net = build()
    randomise(net, rng)
    x = rng.standard_normal((3, 3, 9, 8))
    labels = np.array([0, 3, 2])
    grads = check_net_gradients(net, x, labels, rng, samples=5)
    assert set(grads) == set(net.params)


def test_inputs_giving_different_output_sizes_are_a_shape_error():
    bad = LAYERS.replace("stride=2,1", "stride=1,1", 1)
    with pytest.raises(convnet.ShapeError, match="mix"):
        build(bad)


def test_train_step_runs_in_float32():
    net = build(dtype="float32")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 9, 8)).astype(np.float32)
    before = net.params["mix.biases"].copy()
    metrics = net.train_step(x, np.array([0, 1, 2, 3]))
    assert np.isfinite(metrics["logprob"]["loss"])
    assert not np.array_equal(before, net.params["mix.biases"])
