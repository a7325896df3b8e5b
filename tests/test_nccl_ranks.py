"""NCCL between processes (csrc/comm/rank_sum.cpp, convnet._core.NcclRanks), the gradient sum of
data parallelism on GPU ranks: every rank ends holding the same bits, the sum in rank order;
ranks that call different sums get NCCL's error, a rank that aborts ends the others' sums, and an
abort from another thread ends a sum that waits for a rank that never comes. Each test starts
one process per rank (tests/nccl_rank_worker.py). On the emulated build the emulator's NCCL
joins the processes through shared memory (emu/src/nccl_processes.cpp); on a real CUDA build
NCCL needs a GPU per rank and the library (pip install ".[nccl]")."""

import pathlib
import subprocess
import sys

import numpy as np
import pytest

from convnet import _core
from gpu_helpers import EMULATED, nccl_ranks_unusable

pytestmark = pytest.mark.gpu

WORKER = pathlib.Path(__file__).parent / "nccl_rank_worker.py"
sys.path.insert(0, str(WORKER.parent))
from nccl_rank_worker import rank_data  # noqa: E402


def run_ranks(tmp_path, nranks, scenario, wait=60):
    reason = nccl_ranks_unusable(nranks)
    if reason:
        pytest.skip(reason)
    unique = _core.nccl_unique_id().hex()
    procs = [subprocess.Popen([sys.executable, str(WORKER), unique, str(nranks), str(r),
                               scenario, str(tmp_path)], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
             for r in range(nranks)]
    outputs = []
    for p in procs:
        try:
            outputs.append(p.communicate(timeout=wait)[0])
        except subprocess.TimeoutExpired:
            p.kill()
            outputs.append(p.communicate()[0])
    return procs, outputs


@pytest.mark.parametrize("nranks", [2, 3])
def test_every_rank_ends_with_the_sum_in_rank_order(tmp_path, nranks):
    procs, outputs = run_ranks(tmp_path, nranks, "sums")
    assert all(p.returncode == 0 for p in procs), outputs
    results = [np.load(tmp_path / f"rank{r}.npz") for r in range(nranks)]
    data = [rank_data(r) for r in range(nranks)]
    for k in range(len(data[0])):
        # The rank-order sum, in the tensors' own type; then the sum of halves (ready(0.5)).
        expected = data[0][k].copy()
        halves = data[0][k] * data[0][k].dtype.type(0.5)
        for r in range(1, nranks):
            expected += data[r][k]
            halves += data[r][k] * data[r][k].dtype.type(0.5)
        exact = np.sum([d[k].astype(np.float64) for d in data], axis=0)
        for r in range(nranks):
            got, got_halves = results[r][f"arr_{k}"], results[r][f"arr_{k + len(data[0])}"]
            assert got.dtype == expected.dtype
            if EMULATED:   # the emulator sums in rank order: these very bits
                np.testing.assert_array_equal(got, expected)
                np.testing.assert_array_equal(got_halves, halves)
            else:          # NCCL's ring or tree order: within rounding of the exact sum
                np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-6)
                np.testing.assert_allclose(got_halves, exact / 2, rtol=1e-6, atol=1e-6)
            np.testing.assert_array_equal(got, results[0][f"arr_{k}"])   # the same on all


def test_ranks_that_call_different_sums_get_nccl_s_error(tmp_path):
    if not EMULATED:
        pytest.skip("real NCCL does not check that counts agree (it hangs or corrupts)")
    procs, outputs = run_ranks(tmp_path, 2, "mismatch")
    assert all(p.returncode == 0 for p in procs), outputs
    for r in range(2):
        assert "ncclAllReduce: NCCL error 5 (invalid usage)" in \
            (tmp_path / f"rank{r}.txt").read_text()


def test_a_rank_that_aborts_ends_the_others_sums(tmp_path):
    procs, outputs = run_ranks(tmp_path, 2, "abort")
    assert all(p.returncode == 0 for p in procs), outputs
    assert (tmp_path / "rank0.txt").read_text() == "aborted"
    assert "NCCL error 6" in (tmp_path / "rank1.txt").read_text()


def test_an_abort_ends_a_sum_that_waits_for_a_rank_that_never_comes(tmp_path):
    procs, outputs = run_ranks(tmp_path, 2, "deadline")
    seen = (tmp_path / "rank0.txt").read_text()
    assert "the NCCL communicator was aborted" in seen, (seen, outputs)
    assert float(seen.split(" after ")[1].split()[0]) < 5, seen
