"""Custom stacks from convnet.layers: the same nets as config files, trainable and savable."""

import numpy as np
import pytest

import convnet
from convnet import layers as L
from convnet.config import ConfigError


def stack(**conv):
    return [
        L.Data("data", shape=(3, 12, 10)), L.Data("labels", data_idx=1),
        L.Conv("conv1", "data", filters=8, size=3, padding=1, init_w=0.2, neuron="relu", **conv),
        L.Pool("pool1", "conv1", size=3, stride=2),
        L.LRN("norm1", "pool1", size=3, alpha=0.1),
        L.Conv("conv2", "norm1", filters=6, size=3, padding=1, groups=2, init_w=0.2),
        L.FC("fc1", "conv2", outputs=7, init_w=0.1, neuron="tanh[1,1]"),
        L.FC("fc2", "conv2", outputs=5, init_w=0.1),
        L.Concat("both", ["fc1", "fc2"]),
        L.Dropout("drop", "both", keep=0.8),
        L.FC("out", "drop", outputs=4, init_w=0.1),
        L.Softmax("probs", "out"),
        L.LogRegCost("cost", ["labels", "probs"], topk=2),
    ]


def test_builders_make_the_same_net_as_a_config():
    net = convnet.Net(layers=stack(), seed=2)
    assert net.output_shape("conv1") == (8, 12, 10)
    assert net.output_shape("pool1") == (8, 6, 5)
    assert net.output_shape("conv2") == (6, 6, 5)
    assert net.output_shape("both") == (12,)
    assert net.params["conv2.weights"].shape == (6, 4, 3, 3)
    # The rendered text is a config the reader parses back to the same net.
    again = convnet.Net(convnet.config.parse(
        convnet.config.parse_text(net.source["layers"], "l.cfg"),
        convnet.config.parse_text(net.source["params"], "p.cfg")), seed=2)
    x = np.random.default_rng(0).standard_normal((3, 3, 12, 10)).astype(np.float32)
    np.testing.assert_array_equal(net.predict(x), again.predict(x))


def test_builder_net_trains_and_saves(tmp_path):
    net = convnet.Net(layers=stack(), seed=1)
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 32)
    x = rng.standard_normal((32, 3, 12, 10)).astype(np.float32)
    x[np.arange(32), labels % 3] += 2.0
    first = net.evaluate(x, labels)["cost"]["loss"]
    for _ in range(40):
        net.train_step(x, labels)
    assert net.evaluate(x, labels)["cost"]["loss"] < 0.6 * first
    net.save(tmp_path / "n.npz")
    np.testing.assert_array_equal(convnet.Net.load(tmp_path / "n.npz").predict(x), net.predict(x))


def test_builder_errors_are_config_errors():
    with pytest.raises(ValueError, match="filters=7 is not divisible by groups=2"):
        L.Conv("c", "data", filters=7, size=3, groups=2)
    with pytest.raises(ValueError, match="odd size"):
        L.LRN("n", "c", size=4)
    bad = stack()
    bad[3] = L.Pool("pool1", "nowhere")
    with pytest.raises(ConfigError, match="input layer 'nowhere' is not defined"):
        convnet.Net(layers=bad)
    with pytest.raises(TypeError, match="not both"):
        convnet.Net()


def test_a_layer_reads_the_inline_neuron_by_its_config_name():
    net = convnet.Net(layers=[
        L.Data("data", shape=(3, 8, 7)), L.Data("labels", data_idx=1),
        L.Conv("conv1", "data", filters=4, size=3, padding=1, neuron="relu"),
        L.Pool("pool1", "conv1_neuron", size=2, stride=2),
        L.FC("fc", "pool1", outputs=3), L.Softmax("probs", "fc"),
        L.LogRegCost("cost", ["labels", "probs"])])
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 7))
    assert (net.features(x, "conv1_neuron") >= 0).all()
    assert net.features(x, "pool1").shape == (2, 4, 4, 4)


def test_a_net_without_a_cost_predicts_but_does_not_train():
    net = convnet.Net(layers=[
        L.Data("data", shape=(3, 8, 7)),
        L.Conv("conv1", "data", filters=4, size=3, padding=1, neuron="relu"),
        L.FC("fc", "conv1_neuron", outputs=3), L.Softmax("probs", "fc")])
    x = np.random.default_rng(0).standard_normal((2, 3, 8, 7))
    probs = net.predict(x)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    for call in (lambda: net.train_step(x, np.array([0, 1])),
                 lambda: net.evaluate(x, np.array([0, 1]))):
        with pytest.raises(ValueError, match="the net has no cost layer"):
            call()


def test_an_unread_layer_is_still_an_error_in_a_net_with_a_cost():
    with pytest.raises(ConfigError, match="'stray' of type 'fc' is unused"):
        convnet.Net(layers=[
            L.Data("data", shape=(3, 8, 7)), L.Data("labels", data_idx=1),
            L.FC("stray", "data", outputs=2),
            L.FC("fc", "data", outputs=3), L.Softmax("probs", "fc"),
            L.LogRegCost("cost", ["labels", "probs"])])
