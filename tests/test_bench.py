"""The benchmark tool runs end to end on its quick case set and writes its figures (a few seconds;
the timings themselves are never checked: benchmarks do not belong in tests)."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

import convnet

from convnet.bench.__main__ import main
from convnet.distributed import launcher
from gpu_helpers import nccl_ranks_unusable

META_KEYS = {"machine", "threads", "date", "version", "numpy", "blas", "device", "torch",
             "sgemm_gflops", "sgemm_gflops_start", "sgemm_gflops_end", "copy_gbps",
             "other_load_cores", "elapsed_s"}
ROW_KEYS = {"net", "layer", "op", "shape", "ms", "min_ms", "runs", "flops", "bytes", "gflops",
            "gbps", "fraction_of_limit", "torch_ms", "vs_torch"}


def test_quick_run_writes_json_and_markdown(tmp_path, capsys):
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    assert main(["--quick", "--threads", "1", "--json", str(out_json),
                 "--markdown", str(out_md)]) == 0
    data = json.loads(out_json.read_text())
    assert META_KEYS <= set(data["meta"])
    assert data["meta"]["threads"] == 1
    assert data["meta"]["sgemm_gflops"] > 0 and data["meta"]["copy_gbps"] > 0
    ops = {r["op"] for r in data["results"]}
    assert "local bwd" in ops
    assert {"conv fwd", "conv bwd", "conv fwd+bwd", "fc fwd", "fc bwd", "relu fwd", "relu bwd",
            "lrn fwd", "lrn bwd", "maxpool fwd", "maxpool bwd", "avgpool fwd", "avgpool bwd",
            "rnorm bwd", "cnorm bwd", "dropout fwd", "dropout bwd", "softmax+logloss",
            "sgd update"} <= ops
    for r in data["results"]:
        assert ROW_KEYS <= set(r)
        assert r["ms"] > 0 and r["runs"] >= 3
        assert (r["gflops"] or 0) > 0 or (r["gbps"] or 0) > 0
        assert (r["torch_ms"] is None) == (r["vs_torch"] is None)
    assert isinstance(data["summary"], dict)
    assert "| net | layer | op |" in out_md.read_text()
    assert "conv fwd" in capsys.readouterr().out


def test_filter_keeps_only_matching_cases(tmp_path):
    out_json = tmp_path / "b.json"
    assert main(["--quick", "--filter", "pool", "--json", str(out_json)]) == 0
    rows = json.loads(out_json.read_text())["results"]
    assert rows and all("pool" in f"{r['net']} {r['layer']} {r['op']}" for r in rows)


def test_bad_arguments():
    with pytest.raises(SystemExit, match="no case matches"):
        main(["--quick", "--filter", "nothing-like-this"])
    with pytest.raises(SystemExit):
        main(["--quick", "--threads", "0"])
    if convnet.cuda_device_count() == 0:
        with pytest.raises(SystemExit, match="no GPU on this machine"):
            main(["--quick", "--device", "cuda"])


@pytest.mark.gpu
@pytest.mark.skipif(convnet.cuda_device_count() == 0, reason="needs a GPU (or the emulated one)")
def test_gpu_quick_run(capsys):
    # The GPU benchmark's own code, as a smoke test: batch 2, one launch per case.
    assert main(["--device", "cuda", "--quick", "--filter", "cifar10 conv3"]) == 0
    out = capsys.readouterr().out
    assert "cifar10  conv3  conv fwd fp32" in out and "conv bwd bf16" in out


def test_train_quick_run(capsys, monkeypatch):
    # The whole-step benchmark's own code at batch 2, on every shipped net it times.
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["--train", "--quick", "--layers"]) == 0
    out = capsys.readouterr().out
    for net in ("alexnet", "cifar10-80sec", "cifar10-18pct", "mnist"):
        assert re.search(rf"^{net} +2 +[\d.]+ +\d+", out, flags=re.M), out
        assert f"{net}, batch 2: ms per step in each layer" in out
    assert re.search(r"^conv1 +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+%", out, flags=re.M), out


def test_trainer_against_step_quick_run(capsys, monkeypatch):
    # convnet-train's loop (tests and checkpoints included) against the step, at batch 2.
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["--train", "--quick", "--trainer", "--filter", "mnist"]) == 0
    out = capsys.readouterr().out
    assert "a checkpoint every 2 steps" in out
    row = re.search(r"^mnist +2 +([\d.]+) +([\d.]+) +([\d.]+)$", out, flags=re.M)
    assert row, out
    step, trainer, ratio = map(float, row.groups())
    assert step > 0 and trainer > 0 and ratio == pytest.approx(trainer / step, abs=0.01)


@pytest.mark.skipif(launcher() is None, reason='needs mpiexec: pip install ".[mpi]"')
def test_parallel_quick_run(capsys, monkeypatch, tmp_path):
    # The MPI benchmark's own code at batch 2 on 1 and 2 ranks (one mpiexec each).
    pytest.importorskip("mpi4py")
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["--parallel", "--quick", "--filter", "mnist", "--ranks", "1,2",
                 "--json", str(tmp_path / "p.json")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^ +4\.00 +2 +MPI +[\d.]+ +[\d.]+ +[\d.]+ +[\d.]+$", out, flags=re.M), out
    for ranks, overlap in ((1, "yes"), (1, "no"), (2, "yes"), (2, "no")):
        assert re.search(rf"^mnist +2 +{ranks} +\d+ +MPI +{overlap} +[\d.]+", out,
                         flags=re.M), out
    runs = json.loads((tmp_path / "p.json").read_text())["runs"]
    assert [r["ranks"] for r in runs] == [1, 2]
    two = [s for s in runs[1]["steps"] if not s["overlap"]][0]
    assert 0 < two["comm_ms"] <= two["ms"]


@pytest.mark.gpu
@pytest.mark.skipif(launcher() is None, reason='needs mpiexec: pip install ".[mpi]"')
def test_parallel_quick_run_on_gpus(capsys, monkeypatch, tmp_path):
    # GPU ranks: NCCL's sums where each rank has a GPU of its own (each emulated process has its
    # own devices), else MPI's.
    pytest.importorskip("mpi4py")
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    assert main(["--parallel", "--quick", "--filter", "mnist", "--ranks", "2",
                 "--device", "cuda"]) == 0
    out = capsys.readouterr().out
    summed_by = "MPI" if nccl_ranks_unusable(2) else "NCCL"
    assert re.search(rf"^ +4\.00 +2 +{summed_by} +[\d.]+ +[\d.]+ ", out, flags=re.M), out
    for overlap in ("yes", "no"):
        assert re.search(rf"^mnist +2 +2 +\d+ +{summed_by} +{overlap} +[\d.]+", out,
                         flags=re.M), out


def test_the_pytorch_translation_steps_every_shipped_net(monkeypatch):
    # Only where PyTorch is installed (it is never a dependency): the comparison column's nets
    # build, take a step and give a finite loss.
    torch = pytest.importorskip("torch")
    from convnet.bench import torch_train
    from convnet.bench.train import NETS, layer_defs
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    root = layer_defs()
    for stem, _ in NETS:
        net = convnet.Net.from_cfg(root / f"{stem}.cfg", root / f"{stem}-params.cfg", seed=0)
        shape = net.output_shape("data")
        x = np.random.default_rng(0).standard_normal((2,) + shape).astype(np.float32)
        labels = np.array([0, 1])
        step, layout = torch_train.step_function(net, x, labels, 1)
        assert layout in ("channels_last", "NCHW")
        model = torch_train.build(net, torch, torch.contiguous_format)
        loss = model(torch.from_numpy(x), torch.from_numpy(labels))
        assert torch.isfinite(loss), stem
