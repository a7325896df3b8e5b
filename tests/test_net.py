"""The layer graph built from config files: shapes, the paper's parameter count, a golden forward
pass against the float64 references, an end-to-end gradient check through every layer family
(with fan-out and concat), learning, and errors."""

import pathlib

import numpy as np
import pytest

import convnet
from convnet.config import parse_text
from helpers import check_net_gradients
from nets import build_net, cfg, classifier
from reference import conv as ref_conv
from reference import lrn as ref_lrn
from reference import pool as ref_pool
from reference import softmax as ref_softmax

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYER_DEFS = ROOT / "layer_defs"

TINY = classifier("3,9,8", """
[conv1] type=conv inputs=data channels=3 filters=4 filterSize=3 padding=1 stride=2 initW=0.3
        initB=0.1 neuron=tanh[1,1]
[rnorm1] type=cmrnorm inputs=conv1 channels=4 size=3
[pool1] type=pool pool=max inputs=rnorm1 channels=4 sizeX=3 stride=2
[side] type=fc inputs=conv1 outputs=3 initW=0.2 neuron=logistic
[fc1] type=fc inputs=pool1 outputs=5 initW=0.4 initB=0.2 neuron=relu
[joined] type=concat inputs=fc1,side
[drop] type=dropout inputs=joined
[fc2] type=fc inputs=drop outputs=4 initW=0.5
""", scores="fc2")
TINY_PARAMS = cfg("""
[conv1] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9 wc=0.001
[rnorm1] scale=1.5 pow=0.75 minDiv=2
[side] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[fc1] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9 wc=0.001
[drop] keep=0.7
[fc2] epsW=0.1 epsB=0.1 momW=0.9 momB=0.9
[logprob] coeff=1 topk=2
""")


def tiny(dtype="float64", seed=3):
    return build_net(TINY, TINY_PARAMS, dtype=dtype, seed=seed)


def test_alexnet_summary_matches_the_paper():
    net = convnet.Net.from_cfg(LAYER_DEFS / "alexnet.cfg", LAYER_DEFS / "alexnet-params.cfg")
    # About 60 million parameters and 650,000 neurons (the paper's counts).
    assert net.parameter_count == 60_965_224
    shapes = {name: net.output_shape(name) for name in
              ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool5", "fc6",
               "fc7", "fc8", "probs")}
    assert shapes == {"conv1": (96, 55, 55), "pool1": (96, 27, 27), "conv2": (256, 27, 27),
                      "pool2": (256, 13, 13), "conv3": (384, 13, 13), "conv4": (384, 13, 13),
                      "conv5": (256, 13, 13), "pool5": (256, 6, 6), "fc6": (4096,),
                      "fc7": (4096,), "fc8": (1000,), "probs": (1000,)}
    text = net.summary()
    assert "60,965,224" in text and "659,272" in text
    assert net.params["conv2.weights"].shape == (256, 48, 5, 5)
    assert net.params["fc6.weights"].shape == (4096, 9216)
    np.testing.assert_array_equal(net.params["conv2.biases"], 1.0)
    np.testing.assert_array_equal(net.params["conv3.biases"], 0.0)
    assert abs(net.params["fc7.weights"][:200].std() - 0.01) < 0.001


def test_forward_matches_the_float64_references():
    """Golden: the tiny net's probabilities in test mode, composed from tests/reference."""
    net = tiny()
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 3, 9, 8))
    p = net.params
    # 9x8 with 3x3 stride 2 padding 1 under cuda-convnet's rule: 5x5 (the last column overhangs)
    a = np.tanh(ref_conv.forward(x, p["conv1.weights"], p["conv1.biases"], (2, 2), (1, 1), 1,
                                 5, 5))
    n = ref_lrn.cmrnorm_forward(a, 3, 1.5, 0.75, 2.0)
    pooled = ref_pool.forward(n, "max", (3, 3), (2, 2), (0, 0), 2, 2)
    f1 = np.maximum(pooled.reshape(2, -1) @ p["fc1.weights"].T + p["fc1.biases"], 0)
    side = 1 / (1 + np.exp(-(a.reshape(2, -1) @ p["side.weights"].T + p["side.biases"])))
    joined = np.concatenate([f1, side], axis=1)  # inverted dropout: the identity at test time
    want = ref_softmax.forward(joined @ p["fc2.weights"].T + p["fc2.biases"])
    got = net.predict(x)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_whole_net_gradient_check():
    """Central differences of the objective w.r.t. sampled elements of every parameter, in
    float64, with dropout active (its mask is fixed by seed and step)."""
    net = tiny()
    rng = np.random.default_rng(11)
    x = rng.standard_normal((3, 3, 9, 8))
    labels = np.array([0, 3, 2])
    check_net_gradients(net, x, labels, rng, samples=6)


def test_fan_out_gradients_are_summed():
    """conv1 feeds both rnorm1 and side: its gradient must include both paths, which the
    gradient check above would catch; here, cutting one path changes conv1's gradient."""
    net = tiny()
    rng = np.random.default_rng(2)
    x, labels = rng.standard_normal((2, 3, 9, 8)), np.array([1, 2])
    g_both = net.gradients(x, labels)["conv1.weights"]
    net.params["side.weights"] = np.zeros_like(net.params["side.weights"])
    g_one = net.gradients(x, labels)["conv1.weights"]
    assert not np.allclose(g_both, g_one)


def test_small_net_learns():
    net = tiny(dtype="float32", seed=1)
    rng = np.random.default_rng(0)
    # Four classes told apart by the mean brightness of one channel each.
    labels = rng.integers(0, 4, 64)
    x = rng.standard_normal((64, 3, 9, 8)).astype(np.float32) * 0.3
    for c in range(3):
        x[labels == c, c] += 1.5
    first = net.evaluate(x, labels)["logprob"]["loss"]
    for _ in range(60):
        net.train_step(x, labels)
    last = net.evaluate(x, labels)["logprob"]
    assert last["loss"] < 0.5 * first
    assert last["top1_error"] < 0.2


def test_same_seed_same_net_and_steps():
    a, b = tiny(dtype="float32", seed=7), tiny(dtype="float32", seed=7)
    rng = np.random.default_rng(3)
    x, labels = rng.standard_normal((4, 3, 9, 8)).astype(np.float32), np.array([0, 1, 2, 3])
    for _ in range(3):
        a.train_step(x, labels)
        b.train_step(x, labels)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert not np.array_equal(tiny(seed=8).params["fc2.weights"],
                              tiny(seed=7).params["fc2.weights"])


def test_shape_errors_name_the_layer():
    bad = TINY.replace("[rnorm1]\ntype=cmrnorm\ninputs=conv1\nchannels=4",
                       "[rnorm1]\ntype=cmrnorm\ninputs=conv1\nchannels=6")
    with pytest.raises(convnet.ShapeError, match="layer 'rnorm1' .*channels=6.*expected "
                       r"\(6, -1, -1\), found \(4, 5, 5\)"):
        build_net(bad, TINY_PARAMS)
    net = tiny()
    with pytest.raises(convnet.ShapeError, match="data layer 'data': expected a batch of shape"):
        net.predict(np.zeros((2, 3, 8, 8)))


def test_missing_input_shape_is_a_config_error():
    text = TINY.replace("shape=3,9,8\n", "")
    specs = convnet.config.parse(parse_text(text, "t.cfg"), parse_text(TINY_PARAMS, "p.cfg"))
    with pytest.raises(convnet.config.ConfigError, match=r"t.cfg:2: \[data\] .*input_shape"):
        convnet.Net(specs)
    assert convnet.Net(specs, input_shape=(3, 9, 8)).output_shape("conv1") == (4, 5, 5)


def test_alexnet_two_gpu_form_places_its_columns():
    """The paper's two-column form: the same parameter and neuron counts as the one-GPU form,
    the columns on logical devices 0 and 1, activations crossing only where the paper's do."""
    net = convnet.Net.from_cfg(LAYER_DEFS / "alexnet-2gpu.cfg",
                               LAYER_DEFS / "alexnet-2gpu-params.cfg")
    assert net.parameter_count == 60_965_224
    assert "659,272" in net.summary() and "gpu1" in net.summary()
    where = net.placement
    assert where["conv1a"] == where["conv5a_neuron"] == where["fc8"] == (0,)
    assert where["conv1b"] == where["pool5b"] == where["dropout7b"] == (1,)
    assert sorted(net.cross_device_edges()) == sorted([
        ("pool2b", "conv3a"), ("pool2a", "conv3b"), ("pool5b", "fc6a"), ("pool5a", "fc6b"),
        ("dropout6b", "fc7a"), ("dropout6a", "fc7b"), ("dropout7b", "fc8")])
    assert net.params["conv3a.weights.1"].shape == (192, 128, 3, 3)
    rng = np.random.default_rng(0)
    metrics = net.train_step(rng.standard_normal((2, 3, 224, 224)).astype(np.float32) * 50,
                             np.array([3, 999]))
    assert np.isfinite(metrics["logprob"]["loss"])


def test_one_gpu_net_has_no_device_column():
    assert "device" not in tiny().summary()
    assert tiny().cross_device_edges() == []


def test_profile_times_every_layer_that_works_and_leaves_results_unchanged():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3, 9, 8))
    labels = rng.integers(0, 4, 6)
    plain, profiled = tiny(), tiny()
    assert profiled.layer_times() == {}
    profiled.profile()
    for _ in range(3):
        plain.train_step(x, labels)
        profiled.train_step(x, labels)
    times = profiled.layer_times()
    assert list(times) == [s.name for s in profiled.specs]
    for name in ("conv1", "rnorm1", "pool1", "fc1", "fc2"):
        forward, backward, update = times[name]
        assert forward > 0 and backward > 0, (name, times[name])
    assert times["conv1"][2] > 0 and times["pool1"][2] == 0  # only layers with weights update
    assert times["data"] == (0.0, 0.0, 0.0)
    for name, value in plain.state_arrays().items():
        np.testing.assert_array_equal(profiled.state_arrays()[name], value, err_msg=name)
    profiled.profile(False)
    assert profiled.layer_times() == {}


def test_state_arrays_are_copies_unless_views_are_asked_for():
    net = tiny()
    x = np.random.default_rng(5).standard_normal((2, 3, 9, 8)).astype(np.float32)
    copies, views = net.state_arrays(), net.state_arrays(views=True)
    assert copies.keys() == views.keys()
    before = {k: v.copy() for k, v in views.items()}
    net.train_step(x, [0, 1])
    changed = [k for k in views if not np.array_equal(views[k], before[k])]
    assert "param/conv1.weights" in changed and "velocity/conv1.weights" in changed
    for key in copies:   # the copies keep the values they were taken with
        np.testing.assert_array_equal(copies[key], before[key], err_msg=key)
