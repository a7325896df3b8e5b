"""Placement by gpu=: layers on different logical devices exchange activations and gradients
through copy edges. On the CPU the logical devices are all the CPU, so the copies run the same
code as between two GPUs: the net with gpu= keys must compute exactly what the same net without
them computes, and pass a finite-difference check with gradients crossing devices both ways."""

import re

import numpy as np
import pytest

import convnet
from convnet.config import ConfigError
from helpers import check_net_gradients
from nets import build_net, cfg, classifier

TWO_COLUMNS = classifier("3,9,8", """
[conv_a] type=conv inputs=data channels=3 filters=4 filterSize=3 padding=1 initW=0.3
         neuron=tanh[1,1] gpu=0
[conv_b] type=conv inputs=data channels=3 filters=4 filterSize=3 padding=1 initW=0.3
         neuron=relu gpu=1
[cross_a] type=conv inputs=conv_a,conv_b channels=4,4 filters=2 filterSize=3,3 padding=1,1
          initW=0.2,0.2 gpu=0
[side_b] type=fc inputs=conv_a,conv_b outputs=3 initW=0.1,0.1 gpu=1
[fc] type=fc inputs=cross_a,side_b outputs=4 initW=0.2,0.2 gpu=0
""")

PARAMS = cfg("""
[conv_a] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[conv_b] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[cross_a] epsW=0.1,0.1 epsB=0.1 momW=0.9,0.9 momB=0.9
[side_b] epsW=0.1,0.1 epsB=0.1 momW=0.9,0.9 momB=0.9
[fc] epsW=0.1,0.1 epsB=0.1 momW=0.9,0.9 momB=0.9
[logprob] coeff=1
""")


def build(layers=TWO_COLUMNS, dtype="float64"):
    return build_net(layers, PARAMS, dtype=dtype, seed=9)


def without_placement():
    return build(re.sub(r"\ngpu=\d", "", TWO_COLUMNS))


def test_copy_edges_are_where_the_columns_meet():
    net = build()
    assert net.logical_devices == 2 and net.devices == ["cpu", "cpu"]
    assert sorted(net.cross_device_edges()) == sorted([
        ("conv_b_neuron", "cross_a"), ("conv_a_neuron", "side_b"), ("side_b", "fc")])


def test_placed_net_computes_what_the_unplaced_net_computes():
    rng = np.random.default_rng(0)
    x, labels = rng.standard_normal((3, 3, 9, 8)), np.array([0, 3, 1])
    placed, plain = build(), without_placement()
    for name in plain.params:
        np.testing.assert_array_equal(placed.params[name], plain.params[name])
    np.testing.assert_allclose(placed.predict(x), plain.predict(x), rtol=1e-13, atol=1e-15)
    g_placed, g_plain = placed.gradients(x, labels), plain.gradients(x, labels)
    for name in g_plain:
        np.testing.assert_allclose(g_placed[name], g_plain[name], rtol=1e-12, atol=1e-14,
                                   err_msg=name)
    for _ in range(3):
        placed.train_step(x, labels)
        plain.train_step(x, labels)
    for name in plain.params:
        np.testing.assert_allclose(placed.params[name], plain.params[name], rtol=1e-12,
                                   atol=1e-14, err_msg=name)


def test_gradients_crossing_devices_pass_a_finite_difference_check():
    net = build()
    rng = np.random.default_rng(4)
    x, labels = rng.standard_normal((2, 3, 9, 8)), np.array([2, 0])
    check_net_gradients(net, x, labels, rng, samples=4,
                        names=("conv_a.weights", "conv_b.weights", "conv_b.biases",
                               "side_b.weights.1"))


def test_device_count_and_replica_errors():
    net = build()
    with pytest.raises(ValueError, match="2 logical device"):
        net.to(["cpu", "cpu", "cpu"])
    with pytest.raises(ConfigError, match="several GPUs"):
        build(TWO_COLUMNS.replace("gpu=1", "gpu=0,1", 1))


@pytest.mark.gpu
def test_two_columns_on_gpus_match_the_cpu():
    gpus = ["cuda:0", "cuda:1"] if convnet.cuda_device_count() > 1 else ["cuda:0", "cuda:0"]
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((3, 3, 9, 8)).astype(np.float32), np.array([0, 3, 1])
    cpu, gpu = build(dtype="float32"), build(dtype="float32").to(gpus)
    assert gpu.devices == gpus
    cpu.train_step(x, labels)
    gpu.train_step(x, labels)
    for name in cpu.params:
        np.testing.assert_allclose(gpu.params[name], cpu.params[name], rtol=1e-3, atol=1e-5,
                                   err_msg=name)
