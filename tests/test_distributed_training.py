"""convnet-train under mpiexec (data parallelism over ranks, convnet.distributed): 2 and 3 ranks
train the weights of one process with the same global batches, with random crops, reflections,
colour noise and dropout, a last batch that leaves a rank without images, momentum and weight
decay; a checkpoint written by 2 ranks resumes on 1 and the reverse; ranks that start from other
runs are refused at start, naming the rank and what differs; a rank that stops alone, hangs or is
killed ends the run with a clear error in seconds instead of a hang. Each test starts mpiexec
(MPICH from pip install ".[mpi]", in the test extra) and skips where it is missing."""

import os
import pickle
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import convnet
from gpu_helpers import nccl_missing, nccl_ranks_unusable
from helpers import GPU_VS_CPU_REL_TOL
from nets import cfg, classifier
from test_distributed import mpiexec

pytestmark = pytest.mark.skipif(mpiexec() is None, reason='needs mpiexec: pip install ".[mpi]"')

# 12 x 12 images cropped to 10 x 10 with reflections; a dropout layer of 20 units.
LAYERS = classifier("3,10,10", """
[conv] type=conv inputs=data channels=3 filters=6 filterSize=3 padding=1 initW=0.01 neuron=relu
[pool] type=pool pool=max inputs=conv channels=6 sizeX=3 stride=2
[hidden] type=fc inputs=pool outputs=20 initW=0.01 neuron=relu
[drop] type=dropout inputs=hidden
[fc] type=fc inputs=drop outputs=3 initW=0.01
""")
PARAMS = cfg("""
[conv] epsW=0.02 epsB=0.02 momW=0.9 momB=0.9 wc=0.001
[hidden] epsW=0.02 epsB=0.02 momW=0.9 momB=0.9 wc=0.001
[fc] epsW=0.02 epsB=0.02 momW=0.9 momB=0.9 wc=0.001
[drop] keep=0.6
[logprob] coeff=1
""")
# 49 training images in batches of 16: the last batch has 1 image, so all ranks but one have an
# empty shard of it.
TRAIN_SIZES, TEST_SIZE = (25, 24), 20
# Float32 sums in another order (each rank's gradient, then the all-reduce): after 12 steps the
# weights agree to a few float32 roundings of the updates, far below what a wrong mask, crop or
# share of the batch changes (test_distributed.py shows those break equality in float64).
RTOL, ATOL = 1e-4, 1e-6


def write_data(root, rng):
    """cuda-convnet batches 1-2 (training) and 3 (test) of 12 x 12 images of 3 classes."""
    root.mkdir()
    sizes, train = TRAIN_SIZES + (TEST_SIZE,), []
    for b, n in enumerate(sizes, 1):
        labels = rng.integers(0, 3, n)
        x = rng.normal(80, 40, (n, 3, 12, 12)) + 60 * np.eye(3)[labels][:, :, None, None]
        flat = np.clip(x, 0, 255).astype(np.uint8).reshape(n, -1)
        train += [flat] if b <= len(TRAIN_SIZES) else []
        with open(root / f"data_batch_{b}", "wb") as f:
            pickle.dump({"data": flat.T.copy(), "labels": labels.tolist()}, f)
    mean = np.concatenate(train).mean(axis=0).reshape(-1, 1)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({"label_names": ["a", "b", "c"], "num_vis": 3 * 12 * 12, "data_mean": mean}, f)
    return root


@pytest.fixture
def setup(tmp_path, rng):
    (tmp_path / "net.cfg").write_text(LAYERS)
    (tmp_path / "net-params.cfg").write_text(PARAMS)
    data = write_data(tmp_path / "batches", rng)
    return ["--layers", str(tmp_path / "net.cfg"), "--params", str(tmp_path / "net-params.cfg"),
            "--data-path", str(data), "--train-range", "1-2", "--test-range", "3",
            "--color-noise", "0.1", "--mini", "16", "--test-freq", "3", "--no-progress"]


def command(*argv):
    return [sys.executable, "-m", "convnet.cli.train", *map(str, argv)]


def launch(ranks, *argv, parts=None, timeout=120):
    """convnet-train on `ranks` ranks (one process without mpiexec for 1); parts: a list of
    argument lists, one rank each (mpiexec's colon syntax), instead."""
    if parts is not None:
        cmd = [mpiexec()]
        for i, part in enumerate(parts):
            cmd += ([":"] if i else []) + ["-n", "1"] + command(*part)
    else:
        cmd = ([mpiexec(), "-n", str(ranks)] if ranks > 1 else []) + command(*argv)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def trained(path):
    return convnet.Net.load(path)


def assert_same_weights(a, b):
    assert a.step == b.step
    for name in a.params:
        np.testing.assert_allclose(a.params[name], b.params[name], rtol=RTOL, atol=ATOL,
                                   err_msg=name)


def final_line(out):
    return next(line for line in out.splitlines() if line.startswith("final:"))


def losses(line):
    return [float(v) for v in re.findall(r" ([0-9.]+)(?:,|$)", line)]


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_train_the_weights_of_one_process(tmp_path, setup, ranks):
    one, many = tmp_path / "one.npz", tmp_path / "many.npz"
    single = launch(1, *setup, "--epochs", "3", "--save-path", one)
    assert single.returncode == 0, single.stdout + single.stderr
    done = launch(ranks, *setup, "--epochs", "3", "--save-path", many)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"data parallel over {ranks} ranks" in done.stdout
    # Rank 0 alone prints and writes: one log line each, one checkpoint, one log.
    assert done.stdout.count("final:") == 1 and done.stderr == ""
    assert (tmp_path / "many.log.txt").read_text().count("final:") == 1
    a, b = trained(one), trained(many)
    assert a.step == 12
    assert_same_weights(a, b)
    np.testing.assert_allclose(losses(final_line(done.stdout)),
                               losses(final_line(single.stdout)), rtol=1e-4, atol=1e-6)
    assert not np.allclose(a.params["hidden.weights"],
                           convnet.Net.from_cfg(tmp_path / "net.cfg", tmp_path / "net-params.cfg",
                                                ).params["hidden.weights"])


@pytest.mark.gpu
@pytest.mark.parametrize("sums", ["mpi", "nccl"])
def test_ranks_on_gpus_train_the_weights_of_one_cpu_process(tmp_path, setup, sums):
    # Each rank on the GPU of its rank on the host (--gpu 0,1; both on cuda:0 where there is
    # one), its gradients summed through host memory with MPI or on the GPUs with NCCL (the
    # emulator's NCCL joins the ranks' processes through shared memory), against one process
    # on the CPU.
    if sums == "nccl" and nccl_ranks_unusable():
        pytest.skip(nccl_ranks_unusable())
    cpu, gpu = tmp_path / "cpu.npz", tmp_path / "gpu.npz"
    assert launch(1, *setup, "--epochs", "1", "--save-path", cpu).returncode == 0
    gpus = "0,1" if convnet.cuda_device_count() > 1 else "0"
    done = launch(2, *setup, "--epochs", "1", "--save-path", gpu, "--gpu", gpus,
                  "--sum-with", sums)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"gradients summed with {sums.upper()}" in done.stdout, done.stdout
    assert re.search(r"rank 1: pid \d+ on .*, cuda:" + gpus[-1], done.stdout), done.stdout
    a, b = trained(cpu), trained(gpu)
    assert a.step == b.step == 4
    for name in a.params:   # float32 kernels against the CPU's, over four steps
        np.testing.assert_allclose(b.params[name], a.params[name], rtol=100 * GPU_VS_CPU_REL_TOL,
                                   atol=1e-5, err_msg=name)


@pytest.mark.parametrize("first, then", [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_on_another_number_of_ranks(tmp_path, setup, first, then):
    straight, run = tmp_path / "straight.npz", tmp_path / "run.npz"
    assert launch(1, *setup, "--epochs", "2", "--save-path", straight).returncode == 0
    done = launch(first, *setup, "--epochs", "1", "--save-path", run)
    assert done.returncode == 0, done.stdout + done.stderr
    again = launch(then, "-f", run, "--epochs", "2", "--no-progress")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "resuming at epoch 1.00" in again.stdout
    assert_same_weights(trained(straight), trained(run))


def test_ranks_from_other_runs_are_refused_at_start(tmp_path, setup):
    start = time.monotonic()
    done = launch(2, parts=[setup + ["--epochs", "1", "--no-save"],
                            setup + ["--epochs", "2", "--seed", "3", "--no-save"]], timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the ranks do not start from the same run" in done.stderr
    assert "rank 1 differs from rank 0 in the weights and momenta" in done.stderr
    assert "rank 1 differs from rank 0 in the training options" in done.stderr
    assert done.stderr.count("do not start from the same run") == 1   # said once, by rank 0
    assert "BAD TERMINATION" not in done.stdout + done.stderr   # both stopped together
    # A checkpoint of another step on one rank.
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert launch(1, *setup, "--epochs", "1", "--save-path", a).returncode == 0
    assert launch(1, *setup, "--epochs", "2", "--save-path", b).returncode == 0
    done = launch(2, parts=[["-f", a, "--epochs", "3", "--no-save"],
                            ["-f", b, "--epochs", "3", "--no-save"]], timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "rank 1 differs from rank 0 in the step: 8 against 4" in done.stderr
    assert time.monotonic() - start < 60


@pytest.mark.gpu
def test_ranks_that_share_a_gpu_sum_with_mpi_and_refuse_nccl(tmp_path, setup):
    # NCCL wants a GPU of its own for each rank: two ranks on cuda:0 of one host sum through
    # host memory, and --sum-with nccl says why it cannot.
    if nccl_missing():
        pytest.skip(nccl_missing())
    done = launch(2, *setup, "--epochs", "1", "--no-save", "--gpu", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "gradients summed with MPI" in done.stdout, done.stdout
    done = launch(2, *setup, "--epochs", "1", "--no-save", "--gpu", "0", "--sum-with", "nccl")
    assert done.returncode == 2, done.stdout + done.stderr
    assert re.search(r"NCCL cannot sum the gradients: ranks 0 and 1 share cuda:0 on \S+",
                     done.stderr), done.stderr


def test_nccl_sums_of_cpu_ranks_are_refused_naming_why(tmp_path, setup):
    done = launch(2, *setup, "--epochs", "1", "--no-save", "--sum-with", "nccl", timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "NCCL cannot sum the gradients: rank 0: the net is on cpu, not on one GPU; " \
           "rank 1: the net is on cpu, not on one GPU" in done.stderr, done.stderr
    done = launch(2, parts=[setup + ["--epochs", "1", "--no-save", "--sum-with", "mpi"],
                            setup + ["--epochs", "1", "--no-save"]], timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the ranks ask for different gradient sums: rank 0: MPI, rank 1: NCCL where it " \
           "can" in done.stderr, done.stderr


def test_ranks_may_read_the_data_from_other_paths(tmp_path, setup):
    # Hosts mount the same data in other places: the ranks compare what the data is, not where.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(setup[setup.index("--data-path") + 1], elsewhere)
    moved = list(setup)
    moved[moved.index("--data-path") + 1] = str(elsewhere)
    done = launch(2, parts=[setup + ["--epochs", "1", "--no-save"],
                            moved + ["--epochs", "1", "--no-save"]], timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "final:" in done.stdout


def test_a_rank_that_stops_alone_stops_the_others(tmp_path, setup):
    missing = tmp_path / "missing-params.cfg"
    start = time.monotonic()
    bad = [a if a != str(tmp_path / "net-params.cfg") else str(missing) for a in setup]
    done = launch(2, parts=[setup + ["--epochs", "50"], bad + ["--epochs", "50"]], timeout=60)
    took = time.monotonic() - start
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert "rank 1: convnet-train: error:" in done.stderr and "missing-params.cfg" in done.stderr, out
    assert "rank 1 of 2 stopped (exit code 2) while the others went on" in done.stderr, out
    assert took < 30, (took, out)


def _start_long_run(tmp_path, setup, *extra):
    # Rates halved every epoch, so that the long run cannot diverge before the test stops it.
    cmd = [mpiexec(), "-n", "2"] + command(*setup, "--epochs", "100000", "--no-save",
                                           "--lr-schedule", "exp", "--lr-gamma", "0.5", *extra)
    proc = subprocess.Popen(cmd, env=dict(os.environ, OMP_NUM_THREADS="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    pids, lines = {}, []
    for line in proc.stdout:   # rank 0 prints the rank table before training
        lines.append(line)
        found = re.match(r"\s+rank (\d+): pid (\d+) on .*, (cpu|cuda:\d+)$", line)
        if found:
            pids[int(found[1])] = int(found[2])
        if line.startswith("training "):
            break
    assert set(pids) == {0, 1}, "".join(lines)
    return proc, pids, lines


def _finish(proc, lines, limit=30):
    start = time.monotonic()
    try:
        rest, _ = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run went on after one rank stopped")
    return "".join(lines) + rest, time.monotonic() - start


def _stop_rank_1(proc, pids, lines, limit=30, after=1.0):
    """Stops rank 1 (SIGSTOP: alive but silent) `after` seconds into the run, and _finish()es."""
    time.sleep(after)
    os.kill(pids[1], signal.SIGSTOP)
    try:
        return _finish(proc, lines, limit)
    finally:
        try:
            os.kill(pids[1], signal.SIGCONT)
        except ProcessLookupError:
            pass


def test_a_killed_rank_ends_the_run_naming_it(tmp_path, setup):
    proc, pids, lines = _start_long_run(tmp_path, setup)
    time.sleep(1)
    os.kill(pids[1], signal.SIGKILL)
    out, took = _finish(proc, lines)
    assert proc.returncode != 0, out
    assert took < 30, (took, out)
    # MPICH's launcher names the dead process by pid and host; the table rank 0 printed at
    # start maps that pid to rank 1.
    assert re.search(rf"PID {pids[1]} RUNNING AT", out), out
    assert f"rank 1: pid {pids[1]} on" in out


def test_a_rank_that_hangs_is_given_up_on(tmp_path, setup):
    proc, pids, lines = _start_long_run(tmp_path, setup, "--collective-timeout", "3")
    out, took = _stop_rank_1(proc, pids, lines)   # the others wait 3 s, then stop
    assert proc.returncode != 0, out
    assert "rank 0 of 2: no answer from the other ranks for 3 s" in out, out
    assert "rank 0 of 2 stopped (exit code 1) while the others went on" in out, out
    assert took < 30, (took, out)


@pytest.mark.gpu
def test_a_gpu_rank_that_hangs_in_an_nccl_sum_is_given_up_on(tmp_path, setup):
    # Rank 0's NCCL sum waits for rank 1 (stopped); at the deadline it aborts the communicator
    # (a sum blocked in NCCL cannot be left otherwise) and stops the run.
    if nccl_ranks_unusable():
        pytest.skip(nccl_ranks_unusable())
    gpus = "0,1" if convnet.cuda_device_count() > 1 else "0"
    proc, pids, lines = _start_long_run(tmp_path, setup, "--collective-timeout", "3",
                                        "--gpu", gpus, "--sum-with", "nccl")
    # At once: rank 0 printed its last line before the first step, whose gradient sum is the
    # first collective of training, so that is where it waits (later, a stop could fall between
    # a step's sum and the metrics' sum, an MPI collective).
    out, took = _stop_rank_1(proc, pids, lines, limit=60, after=0.0)
    assert proc.returncode != 0, out
    assert "gradients summed with NCCL" in out, out
    assert "rank 0 of 2: no answer from the other ranks for 3 s in the gradient all-reduce" \
        in out, out
    assert took < 60, (took, out)
