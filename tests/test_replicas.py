"""cuda-convnet2's replicated layers in one process (convnet.replicas): a data-parallel config
(gpu=0,1 on the first layer, the rest inheriting) and the hybrid of "one weird trick" (four
replicas of the convolutions feeding fully connected layers on one device each, joined by a
concat) train exactly as the same net on one device: float64 weights after steps with momentum,
weight decay and dropout to 1e-10, on batches that split evenly, unevenly and leave a replica
without images. The replica graphs keep identical weights; checkpoints hold one copy; the rules
cuda-convnet2 states for replicas are errors naming the layer. On the emulated GPUs (marked gpu)
the replicas run on two and four devices against the CPU's single-device run."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import convnet
from convnet import _core
from convnet.config import ConfigError
from gpu_helpers import EMULATED
from helpers import GPU_VS_CPU_REL_TOL
from nets import build_net, cfg, classifier

DATA_PARALLEL = classifier("3,8,7", """
[conv] type=conv inputs=data channels=3 filters=5 filterSize=3 padding=1 initW=0.3 neuron=relu
       gpu=0,1
[pool] type=pool pool=max inputs=conv channels=5 sizeX=3 stride=2
[hidden] type=fc inputs=pool outputs=9 initW=0.3 neuron=relu
[drop] type=dropout inputs=hidden
[fc] type=fc inputs=drop outputs=4 initW=0.3
""")
# Four replicas of the convolutions; two fully connected halves on devices 0 and 1, each over
# every replica's part of the batch, joined on device 0.
HYBRID = classifier("3,8,7", """
[conv] type=conv inputs=data channels=3 filters=5 filterSize=3 padding=1 initW=0.3 neuron=relu
       gpu=0,1,2,3
[pool] type=pool pool=max inputs=conv channels=5 sizeX=3 stride=2
[half_a] type=fc inputs=pool outputs=5 initW=0.3 neuron=relu gpu=0
[half_b] type=fc inputs=pool outputs=4 initW=0.3 neuron=relu gpu=1
[drop_a] type=dropout inputs=half_a
[drop_b] type=dropout inputs=half_b
[joined] type=concat inputs=drop_a,drop_b gpu=0
[fc] type=fc inputs=joined outputs=4 initW=0.3
""")
WEIGHTS = "epsW=0.05 epsB=0.05 momW=0.9 momB=0.9 wc=0.01"
PARAMS = {
    "data-parallel": cfg(f"[conv] {WEIGHTS} [hidden] {WEIGHTS} [fc] {WEIGHTS} [drop] keep=0.7 "
                         "[logprob] coeff=1"),
    "hybrid": cfg(f"[conv] {WEIGHTS} [half_a] {WEIGHTS} [half_b] {WEIGHTS} [fc] {WEIGHTS} "
                  "[drop_a] keep=0.7 [drop_b] keep=0.6 [logprob] coeff=1"),
}
LAYERS = {"data-parallel": DATA_PARALLEL, "hybrid": HYBRID}


def single_device(layers):
    """The same net with every layer on one device."""
    return "\n".join(line for line in layers.splitlines() if not line.startswith("gpu="))


def build(kind, single=False, dtype="float64"):
    layers = single_device(LAYERS[kind]) if single else LAYERS[kind]
    return build_net(layers, PARAMS[kind], dtype=dtype, seed=3)


def batches(sizes, dtype=np.float64):
    rng = np.random.default_rng(8)
    for n in sizes:
        yield rng.standard_normal((n, 3, 8, 7)).astype(dtype), rng.integers(0, 4, n)


@pytest.mark.parametrize("kind, replicas", [("data-parallel", 2), ("hybrid", 4)])
def test_replicas_train_as_one_device(kind, replicas):
    many, one = build(kind), build(kind, single=True)
    assert many.replicas == replicas and one.replicas == 1
    sizes = [8, 7, 3, 1, 8]   # even, uneven, fewer images than replicas
    for x, y in batches(sizes):
        got, want = many.train_step(x, y), one.train_step(x, y)
        for layer in want:
            for k, v in want[layer].items():
                assert got[layer][k] == pytest.approx(v, rel=1e-10, abs=1e-12), (layer, k)
    for name in one.params:
        np.testing.assert_allclose(many.params[name], one.params[name], rtol=1e-10, atol=1e-12,
                                   err_msg=name)
        assert not np.allclose(one.params[name], build(kind, single=True).params[name]), name
    # Every replica graph holds the same weights and momenta, bit for bit.
    for core in many._cores[1:]:
        for name, (i, j) in many._param_index.items():
            for kind_code in (0, 2):
                np.testing.assert_array_equal(core.param_get(i, j, kind_code),
                                              many._core.param_get(i, j, kind_code), name)


def test_a_replicated_run_checkpoints_one_copy_and_resumes_on_one_device(tmp_path):
    many, one = build("hybrid"), build("hybrid", single=True)
    for x, y in batches([8, 8]):
        many.train_step(x, y)
        one.train_step(x, y)
    many.source = one.source = {"layers": HYBRID, "layers_path": None,
                                "params": PARAMS["hybrid"], "params_path": None}
    many.save(tmp_path / "many.npz")
    with np.load(tmp_path / "many.npz") as saved:
        assert sum(k.startswith("param/") for k in saved.files) == len(one.params)
    again = convnet.Net.load(tmp_path / "many.npz")
    assert again.replicas == 4 and again.step == 2
    for x, y in batches([5]):
        again.train_step(x, y)
        one.train_step(x, y)
    for name in one.params:
        np.testing.assert_allclose(again.params[name], one.params[name], rtol=1e-10, atol=1e-12)
    # Testing and predicting run on the first graph, on the whole batch.
    x, y = next(batches([6]))
    np.testing.assert_allclose(again.predict(x), one.predict(x), rtol=1e-10)


@pytest.mark.parametrize("change, message", [
    (("gpu=0,1,2,3", "gpu=0,0"), "a layer's replicas must be on distinct devices"),
    (("[half_a] type=fc inputs=pool outputs=5 initW=0.3 neuron=relu gpu=0",
      "[half_a] type=fc inputs=pool outputs=5 initW=0.3 neuron=relu gpu=0,1,2"),
     "3 replicas do not divide the 4 of its input pool"),
    (("[half_b] type=fc inputs=pool outputs=4 initW=0.3 neuron=relu gpu=1",
      "[half_b] type=fc inputs=pool outputs=4 initW=0.3 neuron=relu gpu=1,2"),
     "the consumers of pool have different replica counts"),
])
def test_the_replica_rules_are_errors_naming_the_layer(change, message):
    layers = HYBRID.replace(*change) if change[0].startswith("gpu") else \
        HYBRID.replace(cfg(change[0]), cfg(change[1]))
    assert layers != HYBRID
    with pytest.raises(ConfigError, match=message) as caught:
        build_net(layers, PARAMS["hybrid"])
    assert "gpu" in str(caught.value)


def replicas_on_gpus_match_one_cpu(kind):
    """A few steps of the replicated net on the GPUs there are (logical device d on GPU d modulo
    their number) against the single-device net on the CPU."""
    gpus = convnet.cuda_device_count()
    many = build(kind, dtype="float32")
    many.to([f"cuda:{d % gpus}" for d in range(many.logical_devices)])
    one = build(kind, single=True, dtype="float32")
    for x, y in batches([8, 5], np.float32):
        got, want = many.train_step(x, y), one.train_step(x, y)
        assert got["logprob"]["loss"] == pytest.approx(want["logprob"]["loss"], rel=1e-4)
    for name in one.params:
        np.testing.assert_allclose(many.params[name], one.params[name],
                                   rtol=100 * GPU_VS_CPU_REL_TOL, atol=1e-5, err_msg=name)
    if gpus > 1:   # the graphs' gradients crossed devices: with NCCL where it is there
        assert many.gradient_sum_path == ("nccl" if _core.nccl_status() == "" else "host")
    return many.devices


@pytest.mark.gpu
@pytest.mark.parametrize("kind", ["data-parallel", "hybrid"])
def test_replicas_on_gpus_match_one_cpu(kind):
    # On two devices (the emulator's default): the data-parallel replicas on cuda:0 and cuda:1,
    # the hybrid's four on cuda:0, cuda:1, cuda:0, cuda:1.
    replicas_on_gpus_match_one_cpu(kind)


@pytest.mark.gpu
@pytest.mark.skipif(not EMULATED, reason="four emulated devices (CONVNET_EMU_DEVICES=4)")
def test_the_hybrid_on_four_emulated_devices():
    """The hybrid's four convolution replicas on four devices of their own. The emulator reads
    CONVNET_EMU_DEVICES once, so this runs in a fresh process."""
    tests = Path(__file__).resolve().parent
    env = dict(os.environ, CONVNET_EMU_DEVICES="4",
               PYTHONPATH=os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]))
    script = ("import test_replicas as t\n"
              "print(','.join(t.replicas_on_gpus_match_one_cpu('hybrid')))\n")
    run = subprocess.run([sys.executable, "-c", script], env=env, cwd=tests, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split()[-1] == "cuda:0,cuda:1,cuda:2,cuda:3"
