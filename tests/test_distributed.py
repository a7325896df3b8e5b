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


def run_ranks(out, steps, kind, mode="overlap"):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    worker = pathlib.Path(__file__).parent / "mpi_worker.py"
    done = subprocess.run([mpiexec(), "-n", "2", sys.executable, str(worker), str(out),
                           str(steps), kind, mode], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


needs_mpi = pytest.mark.skipif(mpiexec() is None, reason='needs mpiexec: pip install ".[mpi]"')


@needs_mpi
@pytest.mark.parametrize("kind", ["plain", "dropout"])
def test_two_ranks_follow_one_process_with_the_whole_batch(tmp_path, kind):
    pytest.importorskip("mpi4py")
    steps = 4
    run_ranks(tmp_path, steps, kind)
    one = build(kind)
    losses = [one.train_step(x, y)["logprob"]["loss"] for x, y in global_batches(steps, kind)]
    with np.load(tmp_path / "rank0.npz") as r0, np.load(tmp_path / "rank1.npz") as r1:
        for name in one.params:
            np.testing.assert_array_equal(r0[name], r1[name], err_msg=name)
            np.testing.assert_allclose(r0[name], one.params[name], rtol=1e-10, atol=1e-12,
                                       err_msg=name)
            assert not np.allclose(r0[name], build(kind).params[name])   # it did train
        np.testing.assert_allclose(r0["loss"], losses, rtol=1e-10)
        assert r0["overlap"] and r0["buckets"] >= 2   # one per layer at 512 bytes


@needs_mpi
def test_overlapped_buckets_sum_the_same_bits_as_after_backward(tmp_path):
    pytest.importorskip("mpi4py")
    (tmp_path / "overlap").mkdir()
    (tmp_path / "after").mkdir()
    run_ranks(tmp_path / "overlap", 3, "dropout", "overlap")
    run_ranks(tmp_path / "after", 3, "dropout", "after")
    with np.load(tmp_path / "overlap" / "rank0.npz") as a, \
            np.load(tmp_path / "after" / "rank0.npz") as b:
        assert a["overlap"] and not b["overlap"]
        for name in build("dropout").params:
            np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_backward_says_when_each_layer_s_gradients_are_final():
    net = build("dropout")
    net.freeze(["conv"])
    ready = []
    x, y = next(global_batches(1, "dropout"))
    net.train_step(x, y, params_ready=ready.append)
    names = [net.specs[i].name for i in ready]
    assert names == ["fc", "hidden"]   # backward order; frozen and parameterless layers not


def test_buckets_hold_whole_layers_in_backward_order_and_sum_in_pieces():
    from convnet.allreduce import GradientAllReduce
    net = build("dropout")
    x, y = next(global_batches(1, "dropout"))
    grads = net.gradients(x, y)
    pieces = []

    def reduce(piece, what):   # as if a second rank held the same gradients
        pieces.append(piece.size)
        piece *= 2

    def no_answer(what):
        return RuntimeError(what)
    sums = GradientAllReduce(net, 2, reduce, timeout=10, no_answer=no_answer, overlap=False,
                             bucket_bytes=600, piece_bytes=256)
    layers = [layer for b in sums.buckets for layer in b.layers]
    assert layers == sorted(layers, reverse=True) and len(set(layers)) == len(layers)
    assert all(b.buffer.nbytes >= 600 for b in sums.buckets[:-1])
    assert len(sums.buckets) >= 2 and not pieces   # nothing summed before a step
    sums.start(1.0)
    sums.finish()
    assert max(pieces) == 256 // 8 and sum(pieces) == sum(b.buffer.size for b in sums.buckets)
    for name, value in net.trained_gradients().items():
        np.testing.assert_array_equal(value, grads[name], err_msg=name)   # (2 g) / 2


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


def test_freezing_or_thawing_a_layer_changes_what_is_summed():
    from convnet.allreduce import GradientAllReduce
    net = build("dropout")
    sums = GradientAllReduce(net, 1, lambda piece, what: None, timeout=10,
                             no_answer=RuntimeError, overlap=False)

    def summed():
        sums.start(1.0)
        return {name for b in sums.buckets for _, name, _, _ in b.params}
    assert summed() == set(net.trained_gradients())
    net.freeze(["hidden"])
    assert summed() == {"conv.weights", "conv.biases", "fc.weights", "fc.biases"}
    net.freeze(["hidden"], False)
    assert "hidden.weights" in summed()
