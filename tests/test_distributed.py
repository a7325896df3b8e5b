"""Data parallelism over MPI (convnet.distributed), through the Python API: 2 ranks with shards
of B images follow one process with batches of 2B (weights after several steps with momentum and
weight decay, in float64 to 1e-10), also with dropout (each shard draws its part of the global
batch's masks) and with uneven shards (a global batch of 5); the ranks end bit-identical, the
reported loss is the global batch's; and the single-process pieces (sharding, a clear error
without mpi4py). The 2-rank tests run mpiexec (MPICH from pip install ".[mpi]", in the test
extra) and skip where it is missing. convnet-train under mpiexec: test_distributed_training.py."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import convnet
from convnet.data.loader import shard_bounds
from convnet.distributed import launcher
from nets import build_net, cfg, classifier

LAYERS = classifier("3,10,9", """
[conv] type=conv inputs=data channels=3 filters=5 filterSize=3 padding=1 stride=2 initW=0.3
       neuron=relu
[pool] type=pool pool=max inputs=conv channels=5 sizeX=3 stride=2
[fc] type=fc inputs=pool outputs=4 initW=0.3
""")
PARAMS = cfg("""
[conv] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9 wc=0.01
[fc] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9 wc=0.01
[logprob] coeff=1
""")
# With dropout after a layer of 7 units, so that a shard's first element falls inside a Philox
# block, and the global batch of 5 splits into shards of 2 and 3.
DROPOUT_LAYERS = classifier("3,10,9", """
[conv] type=conv inputs=data channels=3 filters=5 filterSize=3 padding=1 stride=2 initW=0.3
       neuron=relu
[hidden] type=fc inputs=conv outputs=7 initW=0.3 neuron=relu
[drop] type=dropout inputs=hidden
[fc] type=fc inputs=drop outputs=4 initW=0.3
""")
DROPOUT_PARAMS = PARAMS + cfg("""
[hidden] epsW=0.05 epsB=0.05 momW=0.9 momB=0.9 wc=0.01
[drop] keep=0.6
""")
NETS = {"plain": (LAYERS, PARAMS, 6), "dropout": (DROPOUT_LAYERS, DROPOUT_PARAMS, 5)}


def build(kind="plain"):
    layers, params, _ = NETS[kind]
    return build_net(layers, params, dtype="float64", seed=5)


def global_batches(steps, kind="plain"):
    rng = np.random.default_rng(11)
    size = NETS[kind][2]
    for _ in range(steps):
        yield (rng.standard_normal((size, 3, 10, 9)), rng.integers(0, 4, size).astype(np.float64))


def mpiexec():
    return launcher()


@pytest.mark.skipif(mpiexec() is None, reason='needs mpiexec: pip install ".[mpi]"')
@pytest.mark.parametrize("kind", ["plain", "dropout"])
def test_two_ranks_follow_one_process_with_the_whole_batch(tmp_path, kind):
    pytest.importorskip("mpi4py")
    steps = 4
    env = dict(os.environ, OMP_NUM_THREADS="1")
    worker = pathlib.Path(__file__).parent / "mpi_worker.py"
    done = subprocess.run([mpiexec(), "-n", "2", sys.executable, str(worker), str(tmp_path),
                           str(steps), kind], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    one = build(kind)
    losses = [one.train_step(x, y)["logprob"]["loss"] for x, y in global_batches(steps, kind)]
    with np.load(tmp_path / "rank0.npz") as r0, np.load(tmp_path / "rank1.npz") as r1:
        for name in one.params:
            np.testing.assert_array_equal(r0[name], r1[name], err_msg=name)
            np.testing.assert_allclose(r0[name], one.params[name], rtol=1e-10, atol=1e-12,
                                       err_msg=name)
            assert not np.allclose(r0[name], build(kind).params[name])   # it did train
        np.testing.assert_allclose(r0["loss"], losses, rtol=1e-10)


def test_each_rank_takes_its_contiguous_shard():
    pytest.importorskip("mpi4py")
    from convnet.distributed import DataParallel
    x, y = np.arange(12).reshape(6, 2), np.arange(6)
    dp = object.__new__(DataParallel)
    dp.rank, dp.size = 1, 3
    sx, sy = dp.shard(x, y)
    np.testing.assert_array_equal(sy, [2, 3])
    np.testing.assert_array_equal(sx, x[2:4])
    # Uneven batches: parts differ by at most one image, and cover the batch in order.
    for n in (7, 2, 1, 0):
        parts = [shard_bounds(n, r, 3) for r in range(3)]
        assert parts[0][0] == 0 and parts[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
        assert max(hi - lo for lo, hi in parts) - min(hi - lo for lo, hi in parts) <= 1


def test_without_mpi4py_the_error_names_the_extra(monkeypatch):
    from convnet import distributed
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(distributed.DistributedError, match=r'pip install "convnet\[mpi\]"'):
        distributed.DataParallel(convnet.Net.from_cfg(
            pathlib.Path(__file__).resolve().parents[1] / "layer_defs" / "mnist.cfg",
            pathlib.Path(__file__).resolve().parents[1] / "layer_defs" / "mnist-params.cfg"))
