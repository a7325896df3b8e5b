"""Neuron fusion: a neuron layer whose gradient needs only its output (relu, logistic, brelu ...)
and whose input layer has no other reader and does not read its own output in backward (conv, fc,
pooling on the CPU) is applied by that layer as it writes, in forward passes that run the costs;
in backward, such a neuron with one reader, itself its input's only reader, is applied by that
reader as it writes the gradient. Fused and unfused nets must agree bit for bit, step after step;
the layers the rules exclude stay separate; and the pre-neuron output a fused forward did not keep
is refused, not returned stale."""

import numpy as np
import pytest

from helpers import check_net_gradients
from nets import build_net, cfg, classifier

LAYERS = classifier("3,12,10", """
[conv1] type=conv inputs=data channels=3 filters=16 filterSize=3 padding=1 initW=0.3 initB=0.1
        neuron=relu
[conv1b] type=conv inputs=conv1 channels=16 filters=16 filterSize=3 padding=1 initW=0.2
        neuron=relu
[pool1] type=pool pool=max inputs=conv1b channels=16 sizeX=3 stride=2 neuron=relu
[conv2] type=conv inputs=pool1 channels=16 filters=5 filterSize=3 padding=1 stride=2 initW=0.3
        neuron=logistic
[pool2] type=pool pool=avg inputs=conv2 channels=5 sizeX=2 stride=2 neuron=brelu[0.6]
[side] type=fc inputs=pool1 outputs=4 initW=0.2 neuron=tanh[1,1]
[conv3] type=conv inputs=pool1 channels=16 filters=4 filterSize=1 initW=0.3
[twice_a] type=neuron inputs=conv3 neuron=relu
[twice_b] type=neuron inputs=conv3 neuron=linear[2,1]
[conv4] type=conv inputs=pool1 channels=16 filters=4 filterSize=3 padding=1 stride=2 initW=0.3
        neuron=relu
[conv5] type=conv inputs=conv4 channels=4 filters=4 filterSize=3 padding=1 initW=0.3
        neuron=relu
[local] type=local inputs=conv5 channels=4 filters=4 filterSize=3 padding=1 initW=0.3
[conv6] type=conv inputs=pool1 channels=16 filters=4 filterSize=1 initW=0.3 neuron=relu
[fc1] type=fc inputs=pool2,side,twice_a,twice_b,local,conv6 outputs=6 initW=0.2 initB=0.1
      neuron=relu
[fc2] type=fc inputs=fc1 outputs=4 initW=0.4
""", scores="fc2")
PARAMS = cfg("""
[conv1] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9 wc=0.001
[conv2] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[conv3] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[conv1b] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[conv4] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[conv5] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[conv6] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[local] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[side] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[fc1] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[fc2] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9
[logprob] coeff=1
""")

# Forward: producer -> the neuron layer fused into it; every other layer has none.
FUSED = {"conv1": "conv1_neuron", "conv1b": "conv1b_neuron", "pool1": "pool1_neuron",
         "conv2": "conv2_neuron", "pool2": "pool2_neuron", "conv4": "conv4_neuron",
         "conv5": "conv5_neuron", "conv6": "conv6_neuron", "fc1": "fc1_neuron"}
# Backward: neuron layer -> the reader that applies its gradient. pool1_neuron has two readers,
# twice_a and twice_b read a layer with two readers, side_neuron's tanh reads its input, and
# conv6_neuron's reader fc1 already applies pool2_neuron's gradient (one per reader). fc and
# local take the default path (the neuron's gradient as a second pass); conv (conv1b: the direct
# convolution; conv5: im2col + GEMM) and pool apply it as they write.
READERS = {"conv1_neuron": "conv1b", "conv1b_neuron": "pool1", "conv2_neuron": "pool2",
           "pool2_neuron": "fc1", "conv4_neuron": "conv5", "conv5_neuron": "local",
           "fc1_neuron": "fc2"}

# Per-image pipelining: producer -> the pooling layer run image by image inside its forward
# (conv1b: the direct convolution; conv2: im2col + GEMM; max and average pooling). pool1_neuron
# has several readers, so nothing is pipelined after pool1.
PIPELINED = {"conv1b": "pool1", "conv2": "pool2"}


def build(dtype, fusion=True):
    net = build_net(LAYERS, PARAMS, dtype=dtype, seed=3)
    net._core.set_neuron_fusion(fusion)
    return net


def batch(n=5):
    rng = np.random.default_rng(7)
    return rng.standard_normal((n, 3, 12, 10)), rng.integers(0, 4, n)


def test_the_rule_picks_the_neurons_it_may_fuse():
    net = build("float32")
    names = [s.name for s in net.specs]
    found = {names[i]: names[net._core.fused_neuron(i)] for i in range(len(names))
             if net._core.fused_neuron(i) >= 0}
    # side (tanh reads its input), conv3 (two readers) and the neuron layers themselves: none.
    assert found == FUSED
    readers = {names[i]: names[net._core.fused_reader(i)] for i in range(len(names))
               if net._core.fused_reader(i) >= 0}
    assert readers == READERS
    pipelined = {names[i]: names[net._core.pipelined_reader(i)] for i in range(len(names))
                 if net._core.pipelined_reader(i) >= 0}
    assert pipelined == PIPELINED


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_and_unfused_training_agree_bit_for_bit(dtype):
    x, labels = batch()
    fused, plain = build(dtype), build(dtype, fusion=False)
    for _ in range(3):
        m_fused, m_plain = fused.train_step(x, labels), plain.train_step(x, labels)
        assert m_fused == m_plain
    for name, value in plain.state_arrays().items():
        np.testing.assert_array_equal(fused.state_arrays()[name], value, err_msg=name)
    # The neurons' outputs, and everything downstream, are the same tensors either way.
    for name in ("conv1_neuron", "pool1_neuron", "fc1_neuron", "probs"):
        np.testing.assert_array_equal(fused.features(x, name), plain.features(x, name))


def test_a_fused_producer_output_is_refused_after_a_training_pass_and_kept_by_features():
    x, labels = batch()
    net = build("float32")
    net.gradients(x, labels)  # a forward pass with the costs: fused
    index = {s.name: i for i, s in enumerate(net.specs)}
    with pytest.raises(RuntimeError, match="layer 'conv1': the last forward pass wrote only the "
                                           "output of 'conv1_neuron'"):
        net._core.output(index["conv1"])
    # Layers without a fused neuron are still readable; features() keeps every output.
    assert net._core.output(index["side"]).shape == (5, 4)
    pre = net.features(x, "conv1")
    post = net.features(x, "conv1_neuron")
    assert (pre < 0).any()
    np.testing.assert_array_equal(post, np.maximum(pre, 0))


def test_a_fused_net_still_passes_the_finite_difference_check():
    x, labels = batch(3)
    check_net_gradients(build("float64"), x, labels, np.random.default_rng(0))


@pytest.mark.gpu
def test_fused_and_unfused_training_agree_bit_for_bit_on_the_gpu():
    # On a GPU the ops apply a fused neuron as a second kernel, in place, and max pooling keeps no
    # winners (its backward reads its output, so no neuron is fused into its forward).
    x, labels = batch()
    fused, plain = build("float32").to("cuda:0"), build("float32").to("cuda:0")
    plain._core.set_neuron_fusion(False)
    names = [s.name for s in fused.specs]
    assert fused._core.fused_neuron(names.index("pool1")) == -1
    assert fused._core.fused_neuron(names.index("conv1")) == names.index("conv1_neuron")
    for _ in range(2):
        assert fused.train_step(x, labels) == plain.train_step(x, labels)
    for name, value in plain.state_arrays().items():
        np.testing.assert_array_equal(fused.state_arrays()[name], value, err_msg=name)
