"""The shipped configs in layer_defs/: each parses strictly without warnings, and each net beyond
AlexNet and the CIFAR-10 nets (LeNet-5, the VGG-, ResNet- and Inception-style MNIST nets, the
MNIST net) trains: a few steps on one small batch lower its loss on that batch, and every layer
with weights moves."""

import pathlib
import warnings

import numpy as np
import pytest

import convnet
from convnet.config import parse

LAYER_DEFS = pathlib.Path(__file__).resolve().parents[1] / "layer_defs"
STEMS = sorted(p.stem for p in LAYER_DEFS.glob("*.cfg") if not p.stem.endswith("-params"))
MNIST_NETS = ["mnist", "lenet5", "vgg-mnist", "resnet-mnist", "inception-mnist"]


def test_every_config_has_its_params_file():
    assert set(MNIST_NETS) <= set(STEMS)
    for stem in STEMS:
        assert (LAYER_DEFS / f"{stem}-params.cfg").is_file(), stem


@pytest.mark.parametrize("stem", STEMS)
def test_shipped_configs_parse_strictly_without_warnings(stem):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parse(LAYER_DEFS / f"{stem}.cfg", LAYER_DEFS / f"{stem}-params.cfg", strict=True)


@pytest.mark.parametrize("stem", MNIST_NETS)
def test_the_mnist_nets_train(stem, rng):
    net = convnet.Net.from_cfg(LAYER_DEFS / f"{stem}.cfg", LAYER_DEFS / f"{stem}-params.cfg",
                               seed=1)
    # digit-like inputs on the 0..255 scale, mean subtracted: a bright square per class
    labels = np.arange(16) % 10
    x = rng.normal(0, 20, (16, 1, 28, 28)).astype(np.float32) - 30
    for i, k in enumerate(labels):
        x[i, 0, 2 * k:2 * k + 8, 4:20] += 200
    before = {k: net.params[k] for k in net.params}
    first = net.evaluate(x, labels)["logprob"]["loss"]
    for _ in range(8):
        net.train_step(x, labels)
    last = net.evaluate(x, labels)["logprob"]["loss"]
    assert np.isfinite(last) and last < first, (first, last)
    moved = {k.split(".")[0] for k in before if not np.array_equal(net.params[k], before[k])}
    assert moved == {k.split(".")[0] for k in before}
