"""Transfer learning: frozen layers stay bit-identical and get no weight gradients (counted),
backward does nothing below the lowest trained layer, the trained layers' step is the one the
unfrozen net takes; --init-from loads by layer name into a net with a new head (loaded layers
start equal to the source's, the table says what happened to each), --freeze takes names and
ranges, and checkpoints keep the frozen set."""

import pathlib

import numpy as np
import pytest

import convnet
from cli_runner import run_cli
from convnet.cli import train as train_cli
from convnet.transfer import (LOADED, NEW, REINITIALISED, UNUSED, TransferError, init_from,
                              select_layers)

ROOT = pathlib.Path(__file__).resolve().parents[1]
MNIST = [str(ROOT / "layer_defs" / "mnist.cfg"), str(ROOT / "layer_defs" / "mnist-params.cfg")]
SMALL = ["--synthetic-train-size", "96", "--synthetic-test-size", "32", "--mini", "16",
         "--epochs", "1", "--no-progress"]


def batch(rng, n=6):
    return (rng.standard_normal((n, 1, 28, 28)).astype(np.float32),
            rng.integers(0, 10, n).astype(np.float32))


def five_class_cfg(tmp_path):
    text = pathlib.Path(MNIST[0]).read_text()
    assert text.count("outputs=10") == 1
    path = tmp_path / "mnist5.cfg"
    path.write_text(text.replace("outputs=10", "outputs=5"))
    return str(path)


def run_train(capsys, *argv):
    return run_cli(train_cli.main, capsys, *argv)


def test_frozen_layers_stay_bit_identical_and_get_no_gradients(rng):
    net = convnet.Net.from_cfg(*MNIST, seed=1)
    net.freeze(["conv1", "conv2"])
    before = {k: net.params[k] for k in net.params}
    for _ in range(3):
        net.train_step(*batch(rng))
    for name, value in before.items():
        changed = not np.array_equal(net.params[name], value)
        assert changed == (name.split(".")[0] in ("fc1", "fc10")), name
    assert net.weight_gradient_passes("conv1") == net.weight_gradient_passes("conv2") == 0
    assert net.weight_gradient_passes("fc1") == net.weight_gradient_passes("fc10") == 3
    # nothing below fc1 (the lowest layer that trains) runs backward: not even pool2's
    assert [name for name in ("conv1", "pool1", "conv2", "pool2", "fc1")
            if net.backward_passes(name)] == ["fc1"]


@pytest.mark.parametrize("frozen", [["conv1"], ["fc1"], ["conv2", "fc10"]])
def test_the_trained_layers_take_the_unfrozen_nets_step(rng, frozen):
    """The gradients of the layers that train do not depend on what is frozen: one step of a
    net with some layers frozen (below, between or above the trained ones) moves every other
    parameter exactly as the unfrozen net's."""
    x, y = batch(rng, 5)
    free, partial = convnet.Net.from_cfg(*MNIST, seed=2), convnet.Net.from_cfg(*MNIST, seed=2)
    partial.freeze(frozen)
    free.train_step(x, y)
    partial.train_step(x, y)
    for name in free.params:
        if name.split(".")[0] in frozen:
            assert not np.array_equal(free.params[name], partial.params[name])
        else:
            np.testing.assert_array_equal(free.params[name], partial.params[name], err_msg=name)
    # backward runs from the costs down to conv1, the lowest layer that trains, in every case
    # but the first, where conv2 is the lowest and pool1 below it needs nothing
    assert partial.backward_passes("pool1") == (frozen != ["conv1"])
    assert partial.backward_passes("conv1") == (frozen != ["conv1"])


def test_thawed_layers_train_again(rng):
    net = convnet.Net.from_cfg(*MNIST, seed=1)
    net.freeze(["conv1"])
    assert net.frozen == ["conv1"]
    net.freeze(["conv1"], False)
    assert net.frozen == []
    w = net.params["conv1.weights"]
    net.train_step(*batch(rng))
    assert not np.array_equal(net.params["conv1.weights"], w)


def test_freeze_names_only_layers_with_weights():
    net = convnet.Net.from_cfg(*MNIST)
    with pytest.raises(ValueError, match=r"layer 'pool1' \(pool\) has no weights; layers with "
                                         r"weights: conv1, conv2, fc1, fc10"):
        net.freeze(["pool1"])
    with pytest.raises(KeyError, match="no layer 'conv9'"):
        net.freeze(["conv9"])


@pytest.mark.parametrize("text, chosen", [
    ("conv1", ["conv1"]), ("conv1-fc1", ["conv1", "conv2", "fc1"]),
    ("pool1-pool2", ["conv2"]), ("fc10,conv1", ["fc10", "conv1"]),
    ("conv1-conv2, conv2", ["conv1", "conv2"]),
])
def test_layer_selections(text, chosen):
    assert select_layers(convnet.Net.from_cfg(*MNIST), text) == chosen


@pytest.mark.parametrize("text, message", [
    ("conv9", "'conv9' is neither a layer nor a range"),
    ("fc1-conv1", "the range fc1-conv1 runs backwards"),
    ("pool2", "'pool2' holds no layer with weights (pool2 is pool)"),
    ("", "no layers given"),
])
def test_bad_layer_selections(text, message):
    with pytest.raises(TransferError) as e:
        select_layers(convnet.Net.from_cfg(*MNIST), text)
    assert message in str(e.value)


def test_init_from_loads_matching_layers_into_a_new_head(tmp_path, rng):
    source = convnet.Net.from_cfg(*MNIST, seed=4)
    source.train_step(*batch(rng))
    source.save(tmp_path / "source.npz")
    net = convnet.Net.from_cfg(five_class_cfg(tmp_path), MNIST[1], seed=9)
    head = net.params["fc10.weights"]
    rows = {r.layer: r for r in init_from(net, tmp_path / "source.npz")}
    assert {k: r.status for k, r in rows.items()} == {
        "conv1": LOADED, "conv2": LOADED, "fc1": LOADED, "fc10": REINITIALISED}
    assert "weights (10, 256) there, (5, 256) here" in rows["fc10"].why
    for name in net.params:
        if name.startswith("fc10."):
            continue
        np.testing.assert_array_equal(net.params[name], source.params[name], err_msg=name)
    np.testing.assert_array_equal(net.params["fc10.weights"], head)


def test_reinit_keeps_a_same_shaped_head_fresh(tmp_path, rng):
    source = convnet.Net.from_cfg(*MNIST, seed=4)
    source.train_step(*batch(rng))
    source.save(tmp_path / "source.npz")
    net = convnet.Net.from_cfg(*MNIST, seed=9)
    fresh = net.params["fc10.weights"]
    rows = {r.layer: r for r in init_from(net, tmp_path / "source.npz", reinit=["fc10"])}
    assert rows["fc10"].status == REINITIALISED and rows["fc10"].why == "--reinit"
    np.testing.assert_array_equal(net.params["fc10.weights"], fresh)
    np.testing.assert_array_equal(net.params["fc1.weights"], source.params["fc1.weights"])


def test_init_from_reports_layers_only_one_net_has(tmp_path):
    source = convnet.Net.from_cfg(*MNIST, seed=4)
    source.save(tmp_path / "source.npz")
    text = pathlib.Path(MNIST[0]).read_text().replace("[fc1]", "[fc1b]")
    text = text.replace("inputs=fc1\n", "inputs=fc1b\n")
    (tmp_path / "renamed.cfg").write_text(text)
    params = pathlib.Path(MNIST[1]).read_text().replace("[fc1]", "[fc1b]")
    (tmp_path / "renamed-params.cfg").write_text(params)
    net = convnet.Net.from_cfg(str(tmp_path / "renamed.cfg"), str(tmp_path / "renamed-params.cfg"))
    rows = {r.layer: r.status for r in init_from(net, tmp_path / "source.npz")}
    assert rows["fc1b"] == NEW and rows["fc1"] == UNUSED and rows["conv2"] == LOADED


def test_init_from_a_missing_file_is_one_clear_error(tmp_path):
    with pytest.raises(TransferError, match="--init-from"):
        init_from(convnet.Net.from_cfg(*MNIST), tmp_path / "nowhere.npz")


def test_checkpoints_keep_the_frozen_layers(tmp_path, rng):
    net = convnet.Net.from_cfg(*MNIST)
    net.freeze(["conv1", "fc1"])
    net.save(tmp_path / "net.npz")
    assert convnet.Net.load(tmp_path / "net.npz").frozen == ["conv1", "fc1"]


def test_feature_extraction_with_a_new_head_in_one_command(tmp_path, capsys):
    """The first strategy: train on one task, then only a new 5-class head on another; the
    frozen layers end bit-identical to the source's, the run resumes frozen."""
    code, _, err = run_train(capsys, "--layers", MNIST[0], "--params", MNIST[1], *SMALL,
                             "--save-path", tmp_path / "source")
    assert code == 0, err
    code, out, err = run_train(capsys, "--layers", five_class_cfg(tmp_path), "--params",
                               MNIST[1], *SMALL, "--synthetic-classes", "5", "--init-from",
                               tmp_path / "source", "--freeze", "conv1-fc1", "--save-path",
                               tmp_path / "head")
    assert code == 0, err
    assert "initialised from" in out and "3 layer(s) loaded" in out
    lines = {line.split()[0]: line.split()[1:3] for line in out.splitlines()
             if line.startswith("  ") and line.split()[0] in ("conv1", "fc1", "fc10")}
    assert lines == {"conv1": ["loaded", "frozen"], "fc1": ["loaded", "frozen"],
                     "fc10": ["re-initialised", "trained"]}
    assert "(conv1, conv2, fc1 frozen)" in out
    source, head = convnet.Net.load(tmp_path / "source"), convnet.Net.load(tmp_path / "head")
    for name in source.params:
        if not name.startswith("fc10."):
            np.testing.assert_array_equal(head.params[name], source.params[name], err_msg=name)
    assert head.frozen == ["conv1", "conv2", "fc1"] and head.step > 0
    # continued with -f, it stays frozen; --freeze given again replaces the set
    code, out, err = run_train(capsys, "-f", tmp_path / "head", "--epochs", "2")
    assert code == 0, err
    assert convnet.Net.load(tmp_path / "head").frozen == ["conv1", "conv2", "fc1"]
    code, out, err = run_train(capsys, "-f", tmp_path / "head", "--epochs", "3", "--freeze",
                               "conv1")
    assert code == 0, err
    assert convnet.Net.load(tmp_path / "head").frozen == ["conv1"]


@pytest.mark.parametrize("extra, message", [
    (["-f", "{tmp}/run", "--init-from", "{tmp}/run"], "--init-from starts a new run"),
    (["--layers", MNIST[0], "--params", MNIST[1], "--freeze", "pool1"],
     "--freeze pool1: 'pool1' holds no layer with weights"),
    (["--layers", MNIST[0], "--params", MNIST[1], "--init-from", "{tmp}/nothing.npz"],
     "--init-from"),
    (["--layers", MNIST[0], "--params", MNIST[1], "--reinit", "fc10"],
     "--reinit LAYERS goes with --init-from RUN"),
])
def test_transfer_errors_are_one_clear_line(tmp_path, capsys, extra, message):
    code, _, err = run_train(capsys, "--layers", MNIST[0], "--params", MNIST[1], *SMALL,
                             "--save-path", tmp_path / "run")
    assert code == 0, err
    code, _, err = run_train(capsys, *[a.format(tmp=tmp_path) for a in extra], *SMALL)
    assert code == 2 and err.count("\n") == 1 and message in err, err
