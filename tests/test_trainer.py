"""convnet-train and the trainer: the headline command on a tiny budget, exact resume,
checkpoints, NaN handling, evaluation and gradient checking from the command line."""

import pathlib
import re

import numpy as np
import pytest

import convnet
from convnet import checkpoint
from convnet.cli.train import main
from convnet.data import SyntheticDataset
from convnet.trainer import Trainer, TrainOptions
from test_net import TINY, TINY_PARAMS

ROOT = pathlib.Path(__file__).resolve().parents[1]
ALEXNET = [str(ROOT / "layer_defs" / "alexnet.cfg"), str(ROOT / "layer_defs" / "alexnet-params.cfg")]
SMALL = ["--synthetic-train-size", "48", "--synthetic-test-size", "16", "--mini", "8",
         "--synthetic-classes", "4", "--no-progress"]


@pytest.fixture
def tiny_cfg(tmp_path):
    layers, params = tmp_path / "tiny.cfg", tmp_path / "tiny-params.cfg"
    layers.write_text(TINY)
    params.write_text(TINY_PARAMS)
    return ["--layers", str(layers), "--params", str(params)]


def test_headline_command_with_a_tiny_budget(tmp_path, capsys):
    save = tmp_path / "alexnet.npz"
    code = main(["--layers", ALEXNET[0], "--params", ALEXNET[1], "--epochs", "1",
                 "--synthetic-train-size", "8", "--synthetic-test-size", "4", "--mini", "4",
                 "--test-freq", "1", "--save-path", str(save), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "training 60,965,224 parameters" in out
    assert out.count("step ") >= 2 and "top5_error" in out
    net = convnet.Net.load(save)
    assert net.step == 2 and net.parameter_count == 60_965_224


def test_resumed_run_equals_uninterrupted_run(tmp_path, tiny_cfg, capsys):
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    assert main(tiny_cfg + SMALL + ["--epochs", "3", "--test-freq", "4",
                                    "--save-path", str(full)]) == 0
    assert main(tiny_cfg + SMALL + ["--epochs", "1", "--test-freq", "4",
                                    "--save-path", str(part)]) == 0
    # Resume from the one-epoch checkpoint and finish the three epochs.
    assert main(["-f", str(part), "--params", tiny_cfg[3]] + SMALL +
                ["--epochs", "3", "--test-freq", "4", "--save-path", str(part)]) == 0
    assert "resuming at epoch 1.00 step 6 (6 of 18 batches done)" in capsys.readouterr().out
    a, b = convnet.Net.load(full), convnet.Net.load(part)
    assert a.step == b.step == 18
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    _, arrays_a = checkpoint.load(full)
    _, arrays_b = checkpoint.load(part)
    for key in arrays_a:
        np.testing.assert_array_equal(arrays_a[key], arrays_b[key], err_msg=key)


def test_metrics_history_is_saved(tmp_path, tiny_cfg):
    save = tmp_path / "c.npz"
    assert main(tiny_cfg + SMALL + ["--epochs", "2", "--test-freq", "3",
                                    "--save-path", str(save)]) == 0
    meta, _ = checkpoint.load(save)
    history = meta["trainer"]["history"]
    assert len(history) == 4 and history[-1]["step"] == 12
    assert {"train/logprob/loss", "test/logprob/loss", "test/logprob/top1_error"} <= set(
        history[0])


def test_nan_stops_training_and_keeps_the_last_checkpoint(tmp_path, capsys):
    layers, params = tmp_path / "t.cfg", tmp_path / "p.cfg"
    layers.write_text(TINY)
    params.write_text(TINY_PARAMS.replace("epsW=0.1", "epsW=1e12"))
    save = tmp_path / "c.npz"
    code = main(["--layers", str(layers), "--params", str(params), "--epochs", "50",
                 "--test-freq", "1", "--save-path", str(save)] + SMALL)
    err = capsys.readouterr().err
    assert code == 1 and re.search(r"the training loss became (nan|inf) at step \d+", err)
    net = convnet.Net.load(save)  # the last good checkpoint still loads
    assert all(np.isfinite(net.params[k]).all() for k in net.params)


def test_checkpoints_are_atomic_and_verified(tmp_path, tiny_cfg):
    save = tmp_path / "c.npz"
    assert main(tiny_cfg + SMALL + ["--epochs", "1", "--save-path", str(save)]) == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tmp")] == []
    data = bytearray(save.read_bytes())
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(checkpoint.CheckpointError, match="truncated.npz: not a readable"):
        convnet.Net.load(tmp_path / "truncated.npz")
    meta, arrays = checkpoint.load(save)
    name = next(iter(arrays))
    arrays[name] = arrays[name] + 1
    np.savez(tmp_path / "tampered.npz", __meta__=np.array(__import__("json").dumps(meta)),
             **arrays)
    with pytest.raises(checkpoint.CheckpointError, match="checksum mismatch"):
        checkpoint.load(tmp_path / "tampered.npz")
    with pytest.raises(checkpoint.CheckpointError, match="file not found"):
        checkpoint.load(tmp_path / "missing.npz")
    # One flipped bit in the middle of an array: the zip members' CRC-32 catches it on reading.
    weights = checkpoint.load(save)[1]["param/conv1.weights"]
    offset = data.find(weights.tobytes()[:64]) + weights.nbytes // 2
    assert offset > weights.nbytes // 2
    data[offset] ^= 0x10
    (tmp_path / "flipped.npz").write_bytes(data)
    with pytest.raises(checkpoint.CheckpointError, match="flipped.npz: checksum mismatch"):
        checkpoint.load(tmp_path / "flipped.npz")


def test_training_leaves_no_spare_checkpoint_behind(tmp_path, tiny_cfg):
    save = tmp_path / "c.npz"
    assert main(tiny_cfg + SMALL + ["--epochs", "2", "--test-freq", "2",
                                    "--save-path", str(save)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.history.csv", "c.log.txt", "c.npz",
                                                         "tiny-params.cfg", "tiny.cfg"]


def test_version_1_checkpoints_still_load_and_verify(tmp_path, tiny_cfg):
    """Version 1 carried a SHA-256 of the arrays in its header instead of their CRC-32s."""
    save = tmp_path / "c.npz"
    assert main(tiny_cfg + SMALL + ["--epochs", "1", "--save-path", str(save)]) == 0
    meta, arrays = checkpoint.load(save)
    del meta["crc32"]
    meta.update(version=1, checksum=checkpoint._sha256(arrays))
    np.savez(tmp_path / "v1.npz", __meta__=np.array(__import__("json").dumps(meta)), **arrays)
    meta_back, arrays_back = checkpoint.load(tmp_path / "v1.npz")
    assert meta_back["version"] == 1
    for key in arrays:
        np.testing.assert_array_equal(arrays_back[key], arrays[key], err_msg=key)
    arrays[next(iter(arrays))] += 1
    np.savez(tmp_path / "v1-tampered.npz", __meta__=np.array(__import__("json").dumps(meta)),
             **arrays)
    with pytest.raises(checkpoint.CheckpointError, match="checksum mismatch"):
        checkpoint.load(tmp_path / "v1-tampered.npz")


def test_net_save_and_load_round_trip(tmp_path, tiny_cfg):
    net = convnet.Net.from_cfg(tiny_cfg[1], tiny_cfg[3], seed=4)
    x = np.random.default_rng(0).standard_normal((2, 3, 9, 8)).astype(np.float32)
    net.train_step(x, [1, 2])
    net.save(tmp_path / "net.npz")
    other = convnet.Net.load(tmp_path / "net.npz")
    np.testing.assert_array_equal(net.predict(x), other.predict(x))
    assert other.step == net.step


def test_test_only_and_check_grads(tmp_path, tiny_cfg, capsys):
    save = tmp_path / "c.npz"
    assert main(tiny_cfg + SMALL + ["--epochs", "1", "--save-path", str(save)]) == 0
    capsys.readouterr()
    assert main(["-f", str(save), "--test-only"] + SMALL) == 0
    assert "logprob: loss" in capsys.readouterr().out
    assert main(tiny_cfg + ["--check-grads"] + SMALL) == 0
    assert "gradient check passed" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--params", ALEXNET[1]], "--layers is required"),
    (["--layers", ALEXNET[0]], "--params is required"),
    (["--layers", ALEXNET[0], "--params", ALEXNET[1], "--gpu", "a"], "give GPU indices"),
    (["--layers", ALEXNET[0], "--params", ALEXNET[1], "--precision", "tf32"], "GPU path"),
    (["--layers", ALEXNET[0], "--params", ALEXNET[1], "--data-path", "/x"], "--data-path"),
    (["--layers", "/nonexistent.cfg", "--params", ALEXNET[1]], "nonexistent.cfg: file not found"),
    (["-f", "/nonexistent.npz"], "nonexistent.npz: file not found"),
    (["--layers", ALEXNET[0], "--params", ALEXNET[1], "--mini", "0"], "--mini must be >= 1"),
])
def test_bad_command_lines(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("batch_size", [0, -3])
def test_trainer_rejects_a_batch_size_below_one(tiny_cfg, batch_size):
    net = convnet.Net.from_cfg(tiny_cfg[1], tiny_cfg[3])
    data = SyntheticDataset((3, 9, 8), classes=4, train_size=16, test_size=8)
    with pytest.raises(ValueError, match=r"the batch size \(--mini\) must be >= 1"):
        Trainer(net, data, TrainOptions(batch_size=batch_size))


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for option in ("--layer-def", "--layer-params", "--data-path", "--data-provider",
                   "--train-range", "--test-range", "--save-path", "--test-freq", "--epochs",
                   "--mini", "--gpu", "--test-only", "--check-grads", "--load-file"):
        assert option in out


@pytest.mark.parametrize("schedule,want", [
    # 6 batches per epoch, a test every 3: the rate of the last step before each test.
    ("step", [1, 1, 0.5, 0.5, 0.25, 0.25]),
    ("exp", [0.5 ** (2 / 6), 0.5 ** (5 / 6), 0.5 ** (8 / 6), 0.5 ** (11 / 6), 0.5 ** (14 / 6),
             0.5 ** (17 / 6)]),
])
def test_fixed_learning_rate_schedules(tmp_path, tiny_cfg, schedule, want):
    save = tmp_path / "c.npz"
    assert main(tiny_cfg + SMALL + ["--epochs", "3", "--test-freq", "3", "--lr-schedule",
                                    schedule, "--lr-gamma", "0.5", "--save-path", str(save)]) == 0
    meta, _ = checkpoint.load(save)
    got = [h["lr_scale"] for h in meta["trainer"]["history"]]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_resume_continues_the_exp_schedule_exactly(tmp_path, tiny_cfg):
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    common = SMALL + ["--test-freq", "4", "--lr-schedule", "exp", "--lr-gamma", "0.3"]
    assert main(tiny_cfg + common + ["--epochs", "2", "--save-path", str(full)]) == 0
    assert main(tiny_cfg + common + ["--epochs", "1", "--save-path", str(part)]) == 0
    assert main(["-f", str(part), "--params", tiny_cfg[3]] + common +
                ["--epochs", "2", "--save-path", str(part)]) == 0
    a, b = convnet.Net.load(full), convnet.Net.load(part)
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)


def test_check_grads_passes_on_a_shipped_net_with_relu_and_max_pool_kinks(capsys):
    # cifar10-18pct's relus and max pools put kinks within the 1e-6 step of some sampled weights;
    # those samples are measured again at a smaller step instead of failing a correct gradient.
    d = ROOT / "layer_defs"
    assert main(["--layers", str(d / "cifar10-18pct.cfg"),
                 "--params", str(d / "cifar10-18pct-params.cfg"), "--check-grads"]) == 0
    assert "gradient check passed" in capsys.readouterr().out


def test_check_grads_still_fails_a_wrong_gradient(tiny_cfg, capsys, monkeypatch):
    # 1% off everywhere: wrong at every step, so measuring again must not rescue it.
    true_gradients = convnet.Net.gradients
    monkeypatch.setattr(convnet.Net, "gradients",
                        lambda self, *a, **k: {name: g * 1.01 for name, g in
                                               true_gradients(self, *a, **k).items()})
    assert main(tiny_cfg + ["--check-grads"] + SMALL) == 1
    out = capsys.readouterr().out
    assert "gradient check FAILED" in out and "at step 1e-08" in out


def test_tests_during_training_take_the_test_set_in_turn_and_the_last_takes_all(
        tiny_cfg, monkeypatch):
    import convnet.trainer as trainer_module
    seen, real = [], trainer_module.Loader

    def spy(data, split, indices, *args, **kwargs):
        if split == "test":
            seen.append([int(i) for i in indices])
        return real(data, split, indices, *args, **kwargs)
    monkeypatch.setattr(trainer_module, "Loader", spy)
    net = convnet.Net.from_cfg(tiny_cfg[1], tiny_cfg[3], seed=1)
    data = SyntheticDataset((3, 9, 8), classes=4, train_size=24, test_size=10)
    Trainer(net, data, TrainOptions(epochs=2, batch_size=4, test_freq=2, test_batches=1,
                                    progress=False), log=lambda line: None).run()
    # 12 batches, a test every 2: five of one batch each, in turn round the 10 images, and the
    # last on all of them.
    assert seen == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1], [2, 3, 4, 5], [6, 7, 8, 9],
                    list(range(10))]


def test_a_resumed_run_takes_the_same_test_batches(tmp_path, tiny_cfg):
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    small = [a if a != "16" else "40" for a in SMALL]  # 40 test images, 8 per test
    common = ["--test-freq", "2", "--test-batches", "1"]
    assert main(tiny_cfg + small + common + ["--epochs", "2", "--save-path", str(full)]) == 0
    assert main(tiny_cfg + small + common + ["--epochs", "1", "--save-path", str(part)]) == 0
    assert main(["-f", str(part), "--params", tiny_cfg[3]] + small +
                ["--epochs", "2", "--save-path", str(part)]) == 0
    history = [checkpoint.load(path)[0]["trainer"]["history"] for path in (full, part)]
    assert len(history[0]) == len(history[1]) == 6
    # The same tests, but at step 6, where the one-epoch run ended and so tested on all 40.
    for i, (a, b) in enumerate(zip(*history)):
        a, b = ({k: v for k, v in h.items() if k != "time"} for h in (a, b))
        assert (a != b) if b["step"] == 6 else (a == b), (i, a, b)
