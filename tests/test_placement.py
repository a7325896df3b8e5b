"""Placement by gpu=: layers on different logical devices exchange activations and gradients
through copy edges. On the CPU the logical devices are all the CPU, so the copies run the same
code as between two GPUs: the net with gpu= keys must compute exactly what the same net without
them computes, and pass a finite-difference check with gradients crossing devices both ways."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convnet
from convnet.config import ConfigError
from gpu_helpers import EMULATED
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
    # The data layer's copy to the other column is a copy edge too.
    assert net.copy_paths() == {(a, b): "cpu" for a, b in
                                net.cross_device_edges() + [("data", "conv_b")]}


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
    with pytest.raises(ConfigError, match="its inputs have different replica counts"):
        build(TWO_COLUMNS.replace("gpu=1", "gpu=0,1", 1))


def two_columns_on_gpus_match_the_cpu():
    """One train step of the two columns on cuda:0 and cuda:1 (cuda:0 twice where there is one
    GPU) against the CPU's; returns the path the copy edges took, after checking that every edge
    took it and that the copies were counted under it."""
    gpus = ["cuda:0", "cuda:1"] if convnet.cuda_device_count() > 1 else ["cuda:0", "cuda:0"]
    rng = np.random.default_rng(1)
    x, labels = rng.standard_normal((3, 3, 9, 8)).astype(np.float32), np.array([0, 3, 1])
    cpu, gpu = build(dtype="float32"), build(dtype="float32").to(gpus)
    assert gpu.devices == gpus
    path = ("device" if gpus[0] == gpus[1] else
            "peer" if convnet.can_access_peer(gpus[0], gpus[1]) else "host")
    before = convnet._core.cuda_copy_counts()
    cpu.train_step(x, labels)
    gpu.train_step(x, labels)
    after = convnet._core.cuda_copy_counts()
    # Forward: 4 edges (the data's to conv_b included); backward: the 3 that carry a gradient.
    assert after[path] - before[path] == 7, (before, after)
    assert set(gpu.copy_paths().values()) == {path}
    for name in cpu.params:
        np.testing.assert_allclose(gpu.params[name], cpu.params[name], rtol=1e-3, atol=1e-5,
                                   err_msg=name)
    np.testing.assert_allclose(gpu.predict(x), cpu.predict(x), rtol=1e-3, atol=1e-5)
    return path


@pytest.mark.gpu
def test_two_columns_on_gpus_match_the_cpu():
    path = two_columns_on_gpus_match_the_cpu()
    if EMULATED and convnet.cuda_device_count() > 1:
        assert path == "peer"  # the emulated devices reach each other unless CONVNET_EMU_PEER=0


@pytest.mark.gpu
@pytest.mark.skipif(not EMULATED or convnet.cuda_device_count() < 2,
                    reason="needs two emulated devices (CONVNET_EMU_PEER)")
def test_two_columns_without_peer_access_copy_through_host_memory():
    """Where the GPUs cannot reach each other the copies are staged through host memory, with the
    same results. The emulator reads CONVNET_EMU_PEER once, so this runs in a fresh process."""
    tests = Path(__file__).resolve().parent
    env = dict(os.environ, CONVNET_EMU_PEER="0",
               PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    script = ("import convnet, test_placement as t\n"
              "assert not convnet.can_access_peer(0, 1)\n"
              "print(t.two_columns_on_gpus_match_the_cpu())\n")
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=tests, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "host"
