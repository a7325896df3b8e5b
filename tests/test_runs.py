"""Run folders: convnet-train saves every run (runs/<layers>-<time>/ with checkpoint.npz, log.txt
and history.csv, named on the first and last lines), -f continues a run from its folder on the
same data and options, written back where it was, and the continued run's log and history are
those of a run that never stopped."""

import os
import pathlib
import re

import numpy as np
import pytest

import convnet
from convnet import checkpoint, runs
from convnet.cli.train import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
CFG = ["--layers", str(ROOT / "layer_defs" / "cifar10-18pct.cfg"),
       "--params", str(ROOT / "layer_defs" / "cifar10-18pct-params.cfg")]
# Not the defaults, so that a resume that forgot them would show: 48 images of 16 = 3 batches.
TINY_DATA = ["--synthetic-train-size", "48", "--synthetic-test-size", "32",
             "--synthetic-classes", "4", "--seed", "3"]
TINY = TINY_DATA + ["--mini", "16", "--test-freq", "3", "--no-progress"]
FOLDER = re.compile(r"runs/cifar10-18pct-\d{8}-\d{6}/")


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path, monkeypatch):
    """Each test in its own working directory, with the default runs/ under it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(runs.RUNS_DIR_ENV, raising=False)


def train(capsys, argv):
    capsys.readouterr()
    assert main(argv) == 0
    return capsys.readouterr().out.splitlines()


def only_folder(tmp_path):
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1, folders
    return folders[0]


def test_a_run_is_saved_by_default_in_a_folder_named_at_start_and_end(tmp_path, capsys):
    out = train(capsys, CFG + TINY + ["--epochs", "2"])
    folder = only_folder(tmp_path)
    name = f"runs/{folder.name}/"
    assert FOLDER.fullmatch(name)
    assert name in out[0] and out[0].startswith("run folder")
    assert name in out[-1] and out[-1].startswith("saved")
    assert sorted(p.name for p in folder.iterdir()) == ["checkpoint.npz", "history.csv",
                                                         "log.txt"]
    assert (folder / "log.txt").read_text().splitlines() == out
    meta = checkpoint.read_meta(folder / "checkpoint.npz")
    history = meta["trainer"]["history"]
    assert [h["step"] for h in history] == [3, 6]
    assert runs.read_history(folder / "history.csv") == history
    header = (folder / "history.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["step", "epoch", "lr_scale", "time"]
    assert {"train/logprob/loss", "test/logprob/top1_error"} <= set(header)
    errors = [h["test/logprob/top1_error"] for h in history]
    assert meta["trainer"]["best_test_error"] == min(errors)


def test_test_only_prints_the_final_errors_again_and_writes_nothing(tmp_path, capsys):
    train(capsys, CFG + TINY + ["--epochs", "1"])
    folder = only_folder(tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    last = checkpoint.read_meta(folder / "checkpoint.npz")["trainer"]["history"][-1]
    out = train(capsys, ["-f", str(folder), "--test-only"])
    line = next(line for line in out if line.startswith("logprob:"))
    printed = dict(re.findall(r"(\w+) ([\d.]+)", line))
    assert set(printed) == {"loss", "top1_error"}
    for key, value in printed.items():
        assert abs(float(value) - last[f"test/logprob/{key}"]) < 1e-6, key
    assert "32 test images" in "\n".join(out)   # the run's own test set, not the default's
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before
    assert len(list((tmp_path / "runs").iterdir())) == 1


def test_f_folder_continues_the_same_run_and_writes_it_back(tmp_path, capsys):
    first = train(capsys, CFG + TINY + ["--epochs", "1"])
    folder = only_folder(tmp_path)
    out = train(capsys, ["-f", str(folder), "--epochs", "2"])
    assert only_folder(tmp_path) == folder          # no new run folder
    assert out[0].startswith(f"continuing the run in {folder}/")
    assert out[-1].startswith(f"saved {folder}/")
    # The run's data and options, not the defaults (2,560 images of 32 a batch).
    assert "2 epoch(s) of 3 batches of 16" in "\n".join(out)
    assert "4 classes, 48 train / 32 test images" in "\n".join(out)
    assert "resuming at epoch 1.00 step 3 (3 of 6 batches done)" in out
    steps = [line.split()[3] for line in out if line.startswith("epoch ")]
    assert steps == ["6"]
    meta = checkpoint.read_meta(folder / "checkpoint.npz")
    assert meta["net"]["step"] == 6
    assert [h["step"] for h in meta["trainer"]["history"]] == [3, 6]
    assert [h["step"] for h in runs.read_history(folder / "history.csv")] == [3, 6]
    assert (folder / "log.txt").read_text().splitlines() == first + out


def test_a_continued_run_logs_and_records_what_a_straight_run_does(tmp_path, capsys):
    straight = train(capsys, CFG + TINY + ["--epochs", "3", "--runs-dir", "straight"])
    train(capsys, CFG + TINY + ["--epochs", "1", "--runs-dir", "stopped"])
    [stopped] = (tmp_path / "stopped").iterdir()
    # Nothing but the folder and the new length: the data and options come from the run.
    train(capsys, ["-f", str(stopped), "--epochs", "3"])
    [whole] = (tmp_path / "straight").iterdir()

    def progress(log):    # the test lines (counters, losses, errors) and the last final line
        return ([line for line in log if line.startswith("epoch ")] +
                [line for line in log if line.startswith("final:")][-1:])
    resumed_log = (stopped / "log.txt").read_text().splitlines()
    assert progress(straight) == progress((whole / "log.txt").read_text().splitlines())
    assert progress(resumed_log) == progress(straight)
    assert len(progress(straight)) == 3 + 1
    a = checkpoint.read_meta(whole / "checkpoint.npz")["trainer"]
    b = checkpoint.read_meta(stopped / "checkpoint.npz")["trainer"]
    for h in a["history"] + b["history"]:
        h.pop("time")
    assert a == b       # every entry, every metric, the counters and best_test_error
    assert np.isfinite(a["best_test_error"])
    ha, hb = (runs.read_history(f / "history.csv") for f in (whole, stopped))
    assert [{k: v for k, v in h.items() if k != "time"} for h in hb] == \
        [{k: v for k, v in h.items() if k != "time"} for h in ha]
    x, y = convnet.Net.load(whole / "checkpoint.npz"), convnet.Net.load(stopped /
                                                                       "checkpoint.npz")
    for name in x.params:
        np.testing.assert_array_equal(x.params[name], y.params[name], err_msg=name)


def test_synthetic_options_survive_resume(tmp_path, capsys):
    save = tmp_path / "c.npz"
    train(capsys, CFG + TINY + ["--epochs", "1", "--save-path", str(save)])
    meta = checkpoint.read_meta(save)
    data = meta["options"]["data"]
    assert (data["synthetic_train_size"], data["synthetic_test_size"], data["synthetic_classes"],
            data["seed"]) == (48, 32, 4, 3)
    out = "\n".join(train(capsys, ["-f", str(save), "--epochs", "2"]))
    assert "--synthetic-train-size 48" in out and "--seed 3" in out
    assert "2 epoch(s) of 3 batches of 16 on the synthetic set (4 classes, 48 train / 32 test" \
        in out
    # Given on the command line, an option replaces the run's, and the output says so.
    out = "\n".join(train(capsys, ["-f", str(save), "--epochs", "3",
                                   "--synthetic-test-size", "16"]))
    assert "--synthetic-test-size 16 (the run had 32)" in out and "48 train / 16 test" in out


def test_no_save_writes_nothing(tmp_path, capsys):
    out = train(capsys, CFG + TINY + ["--epochs", "1", "--no-save"])
    assert "--no-save" in out[0] and out[-1] == "not saved (--no-save)"
    assert list(tmp_path.iterdir()) == []


def test_save_path_keeps_its_meaning_with_the_log_and_history_beside_it(tmp_path, capsys):
    save = tmp_path / "out" / "alexnet.npz"
    out = train(capsys, CFG + TINY + ["--epochs", "1", "--save-path", str(save)])
    assert sorted(p.name for p in save.parent.iterdir()) == [
        "alexnet.history.csv", "alexnet.log.txt", "alexnet.npz"]
    assert not (tmp_path / "runs").exists()
    assert str(save) in out[0] and str(save) in out[-1]
    # -f FILE continues it in place; --save-path DIR/ makes DIR a run folder.
    train(capsys, ["-f", str(save), "--epochs", "2"])
    assert checkpoint.read_meta(save)["net"]["step"] == 6
    assert len(runs.read_history(tmp_path / "out" / "alexnet.history.csv")) == 2
    train(capsys, ["-f", str(save), "--epochs", "3", "--save-path", "copy/"])
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == [
        "checkpoint.npz", "history.csv", "log.txt"]
    assert checkpoint.read_meta(save)["net"]["step"] == 6      # the original left as it was
    assert len(runs.read_history(tmp_path / "copy" / "history.csv")) == 3


def test_a_run_that_is_done_says_how_to_continue_it(tmp_path, capsys):
    train(capsys, CFG + TINY + ["--epochs", "1"])
    folder = only_folder(tmp_path)
    out = train(capsys, ["-f", str(folder)])    # the run's own length: nothing left to do
    assert "nothing to train" in out[0] and "--epochs N" in out[0]
    assert checkpoint.read_meta(folder / "checkpoint.npz")["net"]["step"] == 3


@pytest.mark.parametrize("argv, message", [
    (CFG + ["--no-save", "--save-path", "x.npz"], "--no-save and --save-path"),
    (["-f", "."], "neither checkpoint.npz"),
])
def test_bad_run_options(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_run_folder_names_do_not_collide(tmp_path):
    first = runs.new_run_folder("runs", "layer_defs/alexnet.cfg", 0.0)
    assert re.fullmatch(r"runs/alexnet-\d{8}-\d{6}", first)
    os.makedirs(first)
    assert runs.new_run_folder("runs", "layer_defs/alexnet.cfg", 0.0) == first + "-2"


def test_history_csv_round_trip_with_a_metric_missing_from_a_row(tmp_path):
    history = [{"step": 1, "epoch": 0.5, "test/a/loss": 0.1 + 0.2},
               {"step": 2, "epoch": 1.0, "test/b/loss": 1 / 3}]
    runs.write_history(tmp_path / "h.csv", history)
    assert (tmp_path / "h.csv").read_text().splitlines()[0] == "step,epoch,test/a/loss,test/b/loss"
    assert runs.read_history(tmp_path / "h.csv") == history
