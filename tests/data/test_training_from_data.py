"""convnet-train on real-data providers: a small net learns from CIFAR-format batches, an image
folder, IDX files and in-memory arrays; crops, reflections and colour noise resume exactly;
--test-only with ten views; predicting on image files; bad data stops training clearly."""

import gzip
import pickle

import numpy as np
import pytest

import convnet
from convnet.cli.train import main
from convnet.data import ArrayDataset, Augmentation, AugmentedDataset
from convnet.trainer import TrainOptions, Trainer
from nets import cfg, classifier

PARAMS = cfg("""
[conv1] epsW=0.0001 epsB=0.0002 momW=0.9 momB=0.9
[fc] epsW=0.0001 epsB=0.0002 momW=0.9 momB=0.9
[logprob] coeff=1 topk=2
""")
QUIET = ["--no-progress", "--mini", "16", "--data-workers", "2"]
COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40]], np.float64)


def images(n, size, rng, channels=3):
    """Four classes told apart by colour, or, for one channel, by which quadrant is bright (a
    grey, MNIST-like task), with noise."""
    labels = rng.integers(0, 4, n)
    if channels == 3:
        x = COLOURS[labels][:, :, None, None] + rng.normal(0, 25, (n, 3, size, size))
    else:
        x = rng.normal(40, 25, (n, 1, size, size))
        h = size // 2
        for i, k in enumerate(labels):
            x[i, 0, (k // 2) * h:(k // 2 + 1) * h, (k % 2) * h:(k % 2 + 1) * h] += 160
    return np.clip(x, 0, 255).astype(np.uint8), labels


def net_layers(channels, size):
    """A conv layer and a classifier on channels x size x size images."""
    return classifier(f"{channels},{size},{size}", f"""
[conv1] type=conv inputs=data channels={channels} filters=8 filterSize=5 stride=2 initW=0.001
        neuron=relu
[fc] type=fc inputs=conv1 outputs=4 initW=0.001
""")


def write_cfg(tmp_path, channels, size):
    layers, params = tmp_path / "net.cfg", tmp_path / "net-params.cfg"
    layers.write_text(net_layers(channels, size))
    params.write_text(PARAMS)
    return ["--layers", str(layers), "--params", str(params)]


def write_batches(root, rng, size=32, batches=3, per_batch=64):
    root.mkdir()
    total = 0
    for b in range(1, batches + 1):
        x, y = images(per_batch, size, rng)
        with open(root / f"data_batch_{b}", "wb") as f:
            pickle.dump({"data": x.reshape(per_batch, -1).T.copy(), "labels": list(y)}, f)
        total += x.reshape(per_batch, -1).astype(np.float64).sum(axis=0)
    meta = {"data_mean": (total / (batches * per_batch)).reshape(-1, 1), "num_vis": 3 * size ** 2,
            "label_names": ["red", "green", "blue", "yellow"]}
    with open(root / "batches.meta", "wb") as f:
        pickle.dump(meta, f)
    return root


def write_folder(root, rng, size=(40, 36), per_class=12):
    from PIL import Image
    for split, count in (("train", per_class), ("val", 4)):
        for k, name in enumerate(["red", "green", "blue", "yellow"]):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(count):
                pixels = COLOURS[k] + rng.normal(0, 20, (size[1], size[0], 3))
                Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(d / f"{i}.png")
    return root


def write_idx(root, rng):
    root.mkdir()
    for stem, n in (("train", 192), ("t10k", 64)):
        x, y = images(n, 20, rng, channels=1)
        head = np.array([0x0803, n, 20, 20], ">i4").tobytes()
        with gzip.open(root / f"{stem}-images-idx3-ubyte.gz", "wb") as f:
            f.write(head + x.tobytes())
        with gzip.open(root / f"{stem}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(np.array([0x0801, n], ">i4").tobytes() + y.astype(np.uint8).tobytes())
    return root


def final_errors(out):
    line = [l for l in out.splitlines() if l.startswith("final:")][-1]
    return {k: float(v) for k, v in (part.split() for part in line[7:].split(", "))}


def first_test_error(out):
    line = next(l for l in out.splitlines() if "test loss" in l)
    return float(line.split("top1_error ")[1].split(",")[0])


@pytest.mark.parametrize("kind", ["cifar", "folder", "idx"])
def test_a_small_net_learns_from_each_provider(tmp_path, rng, capsys, kind):
    if kind == "cifar":
        path, cfg = write_batches(tmp_path / "batches", rng), write_cfg(tmp_path, 3, 24)
    elif kind == "folder":
        path, cfg = write_folder(tmp_path / "images", rng), write_cfg(tmp_path, 3, 24)
    else:
        path, cfg = write_idx(tmp_path / "mnist", rng), write_cfg(tmp_path, 1, 20)
    code = main(cfg + QUIET + ["--data-path", str(path), "--epochs", "6", "--test-freq", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"on {kind}" in out or f"on {'cifar' if kind == 'cifar' else kind}" in out
    if kind != "idx":
        assert "random 24x24 crops with reflections" in out
    final = final_errors(out)
    assert final["test/logprob/top1_error"] < 0.25, out
    assert final["test/logprob/top1_error"] < first_test_error(out) or first_test_error(out) < 0.25


def test_in_memory_arrays_through_the_python_api(tmp_path, rng):
    x, y = images(128, 24, rng)
    tx, ty = images(32, 24, rng)
    data = AugmentedDataset(ArrayDataset(train=(x, y), test=(tx, ty)), Augmentation())
    cfg = write_cfg(tmp_path, 3, 24)
    net = convnet.Net.from_cfg(cfg[1], cfg[3], input_shape=None)
    trainer = Trainer(net, data, TrainOptions(epochs=4, batch_size=16, test_freq=8,
                                              progress=False), log=lambda line: None)
    before = trainer.evaluate()["logprob"]["loss"]
    trainer.run()
    after = trainer.evaluate()["logprob"]
    assert after["loss"] < before and after["top1_error"] < 0.25


def test_resume_reproduces_crops_flips_and_colour_noise(tmp_path, rng):
    path = write_folder(tmp_path / "images", rng)
    cfg = write_cfg(tmp_path, 3, 24)
    common = cfg + QUIET + ["--data-path", str(path), "--color-noise", "0.1", "--test-freq", "3"]
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    assert main(common + ["--epochs", "2", "--save-path", str(full)]) == 0
    assert main(common + ["--epochs", "1", "--save-path", str(part)]) == 0
    # Resumed without naming the data again: the checkpoint remembers it and its augmentation.
    resume = [a for a in common[2:] if a not in ("--data-path", str(path), "--color-noise", "0.1")]
    assert main(["-f", str(part)] + resume + ["--epochs", "2", "--save-path", str(part)]) == 0
    a, b = convnet.Net.load(full), convnet.Net.load(part)
    assert a.step == b.step == 6
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name], err_msg=name)
    # The colour PCA was fitted once and cached beside the data.
    assert list(path.glob(".convnet-pca-*.npz"))


def test_test_only_with_ten_views_and_predicting_image_files(tmp_path, rng, capsys):
    path = write_folder(tmp_path / "images", rng)
    cfg = write_cfg(tmp_path, 3, 24)
    save = tmp_path / "run.npz"
    assert main(cfg + QUIET + ["--data-path", str(path), "--epochs", "6", "--test-freq", "6",
                               "--save-path", str(save)]) == 0
    capsys.readouterr()
    assert main(["-f", str(save), "--test-only", "--multiview-test", "--data-path", str(path)]
                + QUIET) == 0
    out = capsys.readouterr().out
    assert "top1_error" in out and "top2_error" in out
    multiview = float(out.split("top1_error ")[1].split(",")[0])
    assert multiview < 0.25
    net = convnet.Net.load(save)
    assert net.data_info["label_names"] == ["blue", "green", "red", "yellow"]
    files = sorted((path / "val" / "green").glob("*.png"))
    probs = net.predict([str(f) for f in files])
    assert probs.shape == (len(files), 4)
    assert (probs.argmax(axis=1) == 1).mean() >= 0.75


def test_bad_data_is_a_clear_error(tmp_path, rng, capsys):
    path = write_folder(tmp_path / "images", rng)
    (path / "train" / "red" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cfg = write_cfg(tmp_path, 3, 24)
    with pytest.raises(SystemExit) as e:
        main(cfg + QUIET + ["--data-path", str(path), "--epochs", "1"])
    assert e.value.code == 2
    assert "broken.jpg" in capsys.readouterr().err
    with pytest.warns(UserWarning, match="skipped 1 bad image"):
        assert main(cfg + QUIET + ["--data-path", str(path), "--epochs", "1",
                                   "--skip-bad-images"]) == 0
    with pytest.raises(SystemExit):
        main(cfg + QUIET + ["--data-path", str(tmp_path / "nothing-here"), "--epochs", "1"])
    assert "--data-path" in capsys.readouterr().err
