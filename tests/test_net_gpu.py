"""The layer graph on a GPU: a whole training step there equals the CPU's within float32
tolerance, for nets covering every layer family and with frozen layers; and the errors where no
GPU is present (these run everywhere)."""

import numpy as np
import pytest

import convnet
from convnet.cli.train import main
from gpu_helpers import EMULATED, assert_close
from test_conv_inputs import build as build_multi_input
from test_net import LAYER_DEFS, tiny

needs_gpu = pytest.mark.gpu
# A train step composes many float32 ops; the CPU and GPU sum in different orders.
STEP_REL_TOL = 1e-3


def same_step(make, x, labels, devices="cuda:0"):
    cpu, gpu = make(), make().to(devices)
    assert gpu.devices == ([devices] if isinstance(devices, str) else devices)
    for name in cpu.params:
        np.testing.assert_array_equal(cpu.params[name], gpu.params[name])
    m_cpu, m_gpu = cpu.train_step(x, labels), gpu.train_step(x, labels)
    for layer in m_cpu:
        for k in m_cpu[layer]:
            assert abs(m_cpu[layer][k] - m_gpu[layer][k]) <= STEP_REL_TOL * max(
                1.0, abs(m_cpu[layer][k])), (layer, k)
    for name in cpu.params:
        assert_close(gpu.params[name], cpu.params[name], STEP_REL_TOL, name)
    assert_close(gpu.predict(x), cpu.predict(x), STEP_REL_TOL, "predict")
    return gpu


@needs_gpu
def test_tiny_net_step_matches_cpu():
    rng = np.random.default_rng(0)
    same_step(lambda: tiny(dtype="float32", seed=5),
              rng.standard_normal((5, 3, 9, 8)).astype(np.float32), np.array([0, 1, 2, 3, 0]))


@needs_gpu
def test_multi_input_conv_local_net_step_matches_cpu():
    rng = np.random.default_rng(1)
    same_step(lambda: build_multi_input(dtype="float32"),
              rng.standard_normal((3, 3, 9, 8)).astype(np.float32), np.array([0, 3, 2]))


@needs_gpu
def test_a_step_with_frozen_layers_matches_cpu():
    """Freezing survives Net.to; the frozen weights stay bit-identical on the device."""
    rng = np.random.default_rng(2)

    def make():
        net = tiny(dtype="float32", seed=7)
        net.freeze([s.name for s in net.specs if s.type == "conv"][:1])
        return net
    before = make()
    gpu = same_step(make, rng.standard_normal((5, 3, 9, 8)).astype(np.float32),
                    np.array([0, 1, 2, 3, 0]))
    assert gpu.frozen == before.frozen and len(gpu.frozen) == 1
    for name in before.params:
        if name.split(".")[0] in before.frozen:
            np.testing.assert_array_equal(gpu.params[name], before.params[name])


# AlexNet on the emulated device takes 70-80 s per case on 2 cores whatever the batch (the
# weight-sized work dominates: fc weight gradients, the update of 61M parameters), so these are
# also marked slow; the emulator takes batch 2, the smallest in which samples can be mixed up.
ALEXNET_BATCH = 2 if EMULATED else 4


def alexnet_batch(rng):
    x = rng.standard_normal((ALEXNET_BATCH, 3, 224, 224)).astype(np.float32) * 50
    return x, np.array([1, 500, 999, 0][:ALEXNET_BATCH])


@needs_gpu
@pytest.mark.slow
def test_alexnet_step_matches_cpu():
    make = lambda: convnet.Net.from_cfg(LAYER_DEFS / "alexnet.cfg",  # noqa: E731
                                        LAYER_DEFS / "alexnet-params.cfg", seed=3)
    same_step(make, *alexnet_batch(np.random.default_rng(2)))


@needs_gpu
@pytest.mark.slow
def test_alexnet_two_gpu_form_step_matches_cpu():
    """The paper's two columns on cuda:0 and cuda:1 (both on cuda:0 where there is one GPU), their
    activations and gradients crossing by the copy path the devices allow."""
    gpus = ["cuda:0", "cuda:1"] if convnet.cuda_device_count() > 1 else ["cuda:0", "cuda:0"]
    make = lambda: convnet.Net.from_cfg(LAYER_DEFS / "alexnet-2gpu.cfg",  # noqa: E731
                                        LAYER_DEFS / "alexnet-2gpu-params.cfg", seed=3)
    gpu = same_step(make, *alexnet_batch(np.random.default_rng(3)), devices=gpus)
    path = ("device" if gpus[0] == gpus[1] else
            "peer" if convnet.can_access_peer(gpus[0], gpus[1]) else "host")
    assert set(gpu.copy_paths().values()) == {path}


@needs_gpu
def test_cli_trains_on_the_gpu(tmp_path, capsys):
    save = tmp_path / "g.npz"
    assert main(["--layers", str(LAYER_DEFS / "cifar10-18pct.cfg"),
                 "--params", str(LAYER_DEFS / "cifar10-18pct-params.cfg"), "--gpu", "0",
                 "--epochs", "1", "--synthetic-train-size", "64", "--synthetic-test-size", "32",
                 "--mini", "16", "--no-progress", "--save-path", str(save)]) == 0
    assert convnet.Net.load(save).step == 4


@needs_gpu
@pytest.mark.skipif(convnet.cuda_device_count() < 2, reason="needs two GPUs")
def test_cli_trains_across_two_gpus(tmp_path):
    # The 18% net with its second half (conv2 on) placed on the second logical device.
    text = (LAYER_DEFS / "cifar10-18pct.cfg").read_text()
    head, tail = text.split("[conv2]")
    tail = "\n[".join(part.rstrip() + "\ngpu=1\n" if not part.startswith("logprob") else part
                      for part in ("[conv2]" + tail).split("\n["))
    layers = tmp_path / "two.cfg"
    layers.write_text(head + tail)
    save = tmp_path / "two.npz"
    assert main(["--layers", str(layers),
                 "--params", str(LAYER_DEFS / "cifar10-18pct-params.cfg"), "--gpu", "0,1",
                 "--epochs", "1", "--synthetic-train-size", "32", "--synthetic-test-size", "16",
                 "--mini", "16", "--no-progress", "--save-path", str(save)]) == 0
    net = convnet.Net.load(save)
    assert net.step == 2 and net.logical_devices == 2


@pytest.mark.skipif(convnet.cuda_device_count() > 0, reason="checks the no-GPU errors")
def test_without_a_gpu_the_errors_are_clear(capsys):
    with pytest.raises(RuntimeError, match="GPU"):
        tiny(dtype="float32").to("cuda:0")
    with pytest.raises(SystemExit):
        main(["--layers", str(LAYER_DEFS / "alexnet.cfg"), "--params",
              str(LAYER_DEFS / "alexnet-params.cfg"), "--gpu", "0"])
    assert "GPU" in capsys.readouterr().err


def test_float64_nets_stay_on_the_cpu():
    if convnet.cuda_device_count() == 0:
        pytest.skip("needs a GPU to reach the dtype check")
    with pytest.raises(ValueError, match="float32"):
        tiny(dtype="float64").to("cuda:0")
