"""Features of a dataset: Net.features batching large inputs, convnet-train --write-features
(batch files read back equal to Net.features on the same centre views, meta.json, clear errors),
the blocked nearest-neighbour search against a float64 brute force, and convnet-show
--show-neighbours (the picture, computed or from written training features)."""

import json
import pathlib

import numpy as np
import pytest

import convnet
from cli_runner import run_cli
from convnet.cli import train as train_cli
from convnet.data import SyntheticDataset
from convnet.features import (FeatureError, layer_features, nearest_neighbours, plain_batch,
                              read_features, write_features)

ROOT = pathlib.Path(__file__).resolve().parents[1]
MNIST = [str(ROOT / "layer_defs" / "mnist.cfg"), str(ROOT / "layer_defs" / "mnist-params.cfg")]
SMALL_DATA = ["--synthetic-train-size", "70", "--synthetic-test-size", "45", "--no-progress"]


def run_train(capsys, *argv):
    return run_cli(train_cli.main, capsys, *argv)


@pytest.fixture(scope="module")
def mnist_net():
    return convnet.Net.from_cfg(*MNIST, seed=3)


def test_features_of_many_images_equal_those_of_one_batch(mnist_net, rng):
    x = rng.standard_normal((23, 1, 28, 28)).astype(np.float32)
    whole = mnist_net.features(x, "fc1", batch_size=64)
    for batch in (1, 5, 22):
        np.testing.assert_allclose(mnist_net.features(x, "fc1", batch_size=batch), whole,
                                   rtol=1e-5, atol=1e-6)
    assert whole.shape == (23, 256)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        mnist_net.features(x, "fc1", batch_size=0)
    with pytest.raises(KeyError, match="no layer 'fc9'"):
        mnist_net.features(x, "fc9")


def test_written_features_read_back_equal_net_features(mnist_net, tmp_path):
    data = SyntheticDataset((1, 28, 28), train_size=37, test_size=29, seed=1)
    folder = tmp_path / "feats"
    folder.mkdir()
    (folder / "data_batch_9.npz").write_bytes(b"left over from an earlier, longer set")
    meta = write_features(mnist_net, data, "pool2", folder, split="train", batch_size=8,
                          file_images=10, run="somewhere")
    feats, labels, read_meta = read_features(folder)
    assert read_meta == meta == json.loads((folder / "meta.json").read_text())
    assert meta["batches"] == 4 and meta["images"] == 37 and meta["layer"] == "pool2"
    assert meta["features"] == 64 * 7 * 7 and meta["layer_shape"] == [64, 7, 7]
    assert sorted(p.name for p in folder.iterdir()) == [
        "data_batch_1.npz", "data_batch_2.npz", "data_batch_3.npz", "data_batch_4.npz",
        "meta.json"]
    x, y = data.batch("train", np.arange(37))
    np.testing.assert_array_equal(feats, mnist_net.features(x, "pool2", batch_size=8)
                                  .reshape(37, -1))
    np.testing.assert_array_equal(labels, y)
    with np.load(folder / "data_batch_2.npz") as z:
        assert z["data"].shape == (10, 3136) and z["data"].dtype == np.float32
        np.testing.assert_array_equal(z["labels"], y[10:20])


def test_features_use_the_test_view_of_training_images(rng, tmp_path):
    """A dataset with random crops and flips: the features of the training split are those of
    the centre crop, the same on every call."""
    from convnet.data import ArrayDataset
    from convnet.data.augment import Augmentation, AugmentedDataset
    images = rng.integers(0, 256, (12, 1, 32, 32), dtype=np.uint8)
    provider = ArrayDataset((images, rng.integers(0, 10, 12)), (images[:4], np.arange(4)))
    data = AugmentedDataset(provider, Augmentation(crop=28, flip=True), seed=0)
    x1, _ = plain_batch(data, "train", np.arange(12))
    x2, _ = plain_batch(data, "train", np.arange(12))
    np.testing.assert_array_equal(x1, x2)
    stored, _ = provider.images("train", np.arange(12))   # the mean already subtracted
    np.testing.assert_array_equal(x1, stored[:, :, 2:30, 2:30])


def brute_force(queries, base, k):
    d = np.sqrt(((queries[:, None, :].astype(np.float64) - base[None].astype(np.float64)) ** 2)
                .sum(-1))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


@pytest.mark.parametrize("n, block, k", [(1000, 128, 5), (300, 1000, 7), (50, 7, 60), (1, 4, 3)])
def test_nearest_neighbours_agree_with_brute_force(rng, n, block, k):
    base = rng.standard_normal((n, 33)).astype(np.float32) * 3 + 1
    queries = np.concatenate([rng.standard_normal((6, 33)).astype(np.float32),
                              base[min(2, n - 1)][None]])   # a query that is a base row
    found = nearest_neighbours(queries, base, k, block=block)
    order, dist = brute_force(queries, base, k)
    np.testing.assert_array_equal(found.indices, order)
    np.testing.assert_allclose(found.distances, dist, rtol=1e-12)
    assert found.indices[-1, 0] == min(2, n - 1) and found.distances[-1, 0] == 0
    assert found.indices.shape == (7, min(k, n))


def test_nearest_neighbours_reject_bad_shapes():
    with pytest.raises(ValueError, match="same number of columns"):
        nearest_neighbours(np.zeros((2, 3)), np.zeros((4, 5)), 1)
    with pytest.raises(ValueError, match="k must be >= 1"):
        nearest_neighbours(np.zeros((2, 3)), np.zeros((4, 3)), 0)


def test_convnet_train_writes_features_of_a_run(tmp_path, capsys):
    run = tmp_path / "run.npz"
    code, _, err = run_train(capsys, "--layers", MNIST[0], "--params", MNIST[1], *SMALL_DATA,
                             "--epochs", "1", "--mini", "16", "--save-path", run)
    assert code == 0, err
    code, out, err = run_train(capsys, "-f", run, "--write-features", "fc1", "--feature-path",
                               tmp_path / "f", "--mini", "16")
    assert code == 0, err
    assert "wrote 45 x 256 features" in out and "test split" in out
    feats, labels, meta = read_features(tmp_path / "f")
    net = convnet.Net.load(run)
    data = SyntheticDataset((1, 28, 28), train_size=70, test_size=45, seed=0)
    expect, expect_labels = layer_features(net, data, "fc1", "test", batch_size=16)
    np.testing.assert_array_equal(feats, expect)
    np.testing.assert_array_equal(labels, expect_labels)
    assert meta["run"] == str(run) and meta["step"] == net.step > 0


@pytest.mark.parametrize("extra, message", [
    (["--write-features", "fc1"], "--write-features LAYER and --feature-path DIR go together"),
    (["--feature-path", "x"], "--write-features LAYER and --feature-path DIR go together"),
    (["--write-features", "fc9", "--feature-path", "{tmp}/f"],
     "--write-features fc9: the net has no layer of that name (its layers: data, labels, conv1"),
])
def test_write_features_errors_are_one_clear_line(tmp_path, capsys, extra, message):
    extra = [a.format(tmp=tmp_path) for a in extra]
    code, _, err = run_train(capsys, "--layers", MNIST[0], "--params", MNIST[1], *SMALL_DATA,
                             *extra)
    assert code == 2 and err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "f").exists()


def test_reading_an_unfinished_feature_folder_says_so(tmp_path):
    (tmp_path / "data_batch_1.npz").write_bytes(b"")
    with pytest.raises(FeatureError, match="no meta.json; is it a feature folder"):
        read_features(tmp_path)


@pytest.mark.slow
def test_the_search_scales_to_sixty_thousand_rows(rng):
    """60,000 x 4,096 features (the paper's fc7 on MNIST's training set size): the k best of
    the blocked search equal those of a brute force over the few rows that can be nearest."""
    base = rng.standard_normal((60000, 4096), dtype=np.float32)
    queries = base[[5, 59999]] + 0.01 * rng.standard_normal((2, 4096), dtype=np.float32)
    found = nearest_neighbours(queries, base, 6)
    assert found.indices[:, 0].tolist() == [5, 59999]
    rows = np.unique(found.indices)
    _, dist = brute_force(queries, base[rows], 1)
    np.testing.assert_allclose(found.distances[:, 0], dist[:, 0], rtol=1e-12)
