"""convnet-show: the pictures of a saved run (learning curves, filter grids, top-5 predictions,
nearest neighbours) are written where they should be, at their stated pixel sizes, are not blank, and show the
weights and probabilities they claim to; bad input gives one clear line."""

import json
import math
import pathlib
import pickle
import shutil

import numpy as np
import pytest

pytest.importorskip("matplotlib")
from PIL import Image  # noqa: E402

import convnet  # noqa: E402
from cli_runner import run_cli  # noqa: E402
from convnet import checkpoint  # noqa: E402
from convnet.cli import show as show_cli  # noqa: E402
from convnet.cli import train as train_cli  # noqa: E402
from convnet.show import ShowError, cost_curves, draw, filter_grid, layer_filters  # noqa: E402
from convnet.show import layers_with_filters, open_run, open_test_data, predictions  # noqa: E402
from convnet.show import neighbour_pictures  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
CFG = [str(ROOT / "layer_defs" / "cifar10-18pct.cfg"),
       str(ROOT / "layer_defs" / "cifar10-18pct-params.cfg")]
TINY_RUN = ["--synthetic-train-size", "64", "--synthetic-test-size", "32", "--mini", "16",
            "--epochs", "1", "--test-freq", "2", "--no-progress"]


def train(folder, *extra):
    code = train_cli.main(["--layers", CFG[0], "--params", CFG[1], *TINY_RUN,
                           "--save-path", str(folder / "checkpoint.npz"), *extra])
    assert code == 0
    return folder


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return train(tmp_path_factory.mktemp("show") / "run")


def show(capsys, *argv):
    """Runs convnet-show; returns (exit code, stdout lines, stderr)."""
    code, out, err = run_cli(show_cli.main, capsys, *argv)
    return code, out.split(), err


def read_png(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"), np.float64)


def assert_not_blank(pixels):
    # a blank or single-colour picture has (almost) no variance; drawn curves and tiles have lots
    assert pixels.std() > 10, "the picture is (almost) blank"


def test_the_three_pictures_of_a_run_folder(run_dir, capsys):
    code, paths, err = show(capsys, run_dir, "--show-cost", "--show-filters", "conv1",
                            "--show-preds")
    assert code == 0, err
    assert paths == [str(run_dir / n) for n in ("cost.png", "filters-conv1.png", "preds.png")]
    run = open_run(run_dir)
    curves = cost_curves(run.history)
    weights, colour, _ = layer_filters(run.net, "conv1")
    expected = {"cost.png": draw.cost_size(curves),
                "filters-conv1.png": draw.filters_size(filter_grid(weights, colour)),
                "preds.png": (1200, 800)}     # 8 images: two rows of four 300x400 cells
    # loss, top-1 error and the learning-rate scale: two rows of two panels
    assert expected["cost.png"] == (1000, 680)
    # 32 colour tiles of 5x5 in 8 columns and 4 rows with 1-pixel gaps, 12 pixels per weight
    assert expected["filters-conv1.png"] == (47 * 12 + 20, 23 * 12 + 60)
    for name, size in expected.items():
        pixels = read_png(run_dir / name)
        assert (pixels.shape[1], pixels.shape[0]) == size, name
        assert_not_blank(pixels)


def test_a_checkpoint_file_and_another_output_folder(run_dir, tmp_path, capsys):
    out = tmp_path / "pictures"
    code, paths, err = show(capsys, run_dir / "checkpoint.npz", "--show-filters", "conv2",
                            "--show-filters", "fc10", "--norm-filters", "--out", out)
    assert code == 0, err
    assert paths == [str(out / "filters-conv2.png"), str(out / "filters-fc10.png")]
    for path in paths:
        assert_not_blank(read_png(path))


def test_the_png_tiles_are_conv1s_weights(run_dir, tmp_path, capsys):
    """Read back: the centre of each weight's square in the PNG has the colour of the weight,
    scaled as the grid scales it (one linear map for all filters)."""
    assert show(capsys, run_dir, "--show-filters", "conv1", "--out", tmp_path)[0] == 0
    pixels = read_png(tmp_path / "filters-conv1.png")
    weights = convnet.Net.load(run_dir / "checkpoint.npz").params["conv1.weights"]
    grid = filter_grid(weights, colour=True)
    width, height = draw.filters_size(grid)
    z = draw.filters_zoom(grid)
    gh, gw = grid.image.shape[:2]
    left, top = (width - gw * z) // 2, height - draw.FILTERS_MARGIN - gh * z
    lo, hi = weights.min(), weights.max()
    for f, _, row, col in grid.tiles:
        for y in range(5):
            for x in range(5):
                py, px = top + (row + y) * z + z // 2, left + (col + x) * z + z // 2
                want = 255 * (weights[f, :, y, x] - lo) / (hi - lo)
                np.testing.assert_allclose(pixels[py, px], want, atol=1.5)


def test_each_colour_tile_is_its_normalised_filter(rng):
    weights = rng.standard_normal((7, 3, 4, 5))
    weights[3] *= 0.01          # a weak filter stays faint under the shared scale
    grid = filter_grid(weights, colour=True)
    assert grid.image.shape == (3 * 5 - 1, 3 * 6 - 1, 3)   # 7 tiles in 3 columns, 3 rows
    lo, hi = weights.min(), weights.max()
    assert len(grid.tiles) == 7
    for f, channel, top, left in grid.tiles:
        assert channel is None
        tile = grid.image[top:top + 4, left:left + 5]
        np.testing.assert_allclose(tile, ((weights[f] - lo) / (hi - lo)).transpose(1, 2, 0))
    _, _, top, left = grid.tiles[3]
    assert np.ptp(grid.image[top:top + 4, left:left + 5]) < 0.05
    # per filter: every tile spans [0, 1] on its own
    alone = filter_grid(weights, colour=True, per_filter=True)
    for f, _, top, left in alone.tiles:
        w = weights[f]
        np.testing.assert_allclose(alone.image[top:top + 4, left:left + 5],
                                   ((w - w.min()) / np.ptp(w)).transpose(1, 2, 0))
    # the gaps between tiles are no weight at all
    covered = np.zeros(grid.image.shape[:2], bool)
    for _, _, top, left in grid.tiles:
        covered[top:top + 4, left:left + 5] = True
    assert np.isnan(grid.image[~covered]).all() and not np.isnan(grid.image[covered]).any()


def test_grey_tiles_are_the_first_channels_of_each_filter(rng):
    weights = rng.standard_normal((6, 10, 3, 3))
    grid = filter_grid(weights, colour=False, max_channels=4, max_filters=5)
    assert (grid.filters, grid.channels, grid.total_filters, grid.total_channels) == (5, 4, 6, 10)
    assert sorted((f, c) for f, c, _, _ in grid.tiles) == [(f, c) for f in range(5)
                                                             for c in range(4)]
    shown = weights[:5, :4]
    lo, hi = shown.min(), shown.max()
    for f, c, top, left in grid.tiles:
        np.testing.assert_allclose(grid.image[top:top + 3, left:left + 3],
                                   (weights[f, c] - lo) / (hi - lo))
    alone = filter_grid(weights, colour=False, max_channels=4, per_filter=True)
    for f, c, top, left in alone.tiles:
        w = weights[f, :4]
        np.testing.assert_allclose(alone.image[top:top + 3, left:left + 3],
                                   (weights[f, c] - w.min()) / np.ptp(w))


def test_which_weights_each_layer_shows(run_dir):
    net = open_run(run_dir).net
    assert layers_with_filters(net) == ["conv1", "conv2", "conv3", "fc10"]
    weights, colour, _ = layer_filters(net, "conv1")
    assert colour and np.array_equal(weights, net.params["conv1.weights"])
    weights, colour, _ = layer_filters(net, "conv2")
    assert not colour and weights.shape == (32, 32, 5, 5)
    # fc10 reads pool3 (64 x 4 x 4): each output's weights over it, channel by channel
    weights, colour, _ = layer_filters(net, "fc10")
    assert not colour and weights.shape == (10, 64, 4, 4)
    np.testing.assert_array_equal(weights[2].ravel(), net.params["fc10.weights"][2])


def test_learning_curves_and_learning_rate_changes():
    history = [{"step": 10 * i, "epoch": i / 2, "lr_scale": 1.0 if i < 3 else 0.1,
                "train/logprob/loss": 2.0 / i, "test/logprob/loss": 2.5 / i,
                "train/logprob/top1_error": 0.9 / i, "test/logprob/top5_error": 0.5 / i,
                "test/logprob/top1_error": 0.95 / i} for i in range(1, 6)]
    curves = cost_curves(history[::-1])    # any order: sorted by step
    assert list(curves.steps) == [10, 20, 30, 40, 50]
    assert list(curves.metrics) == ["loss", "top1_error", "top5_error"]
    assert list(curves.metrics["loss"]) == ["train/logprob", "test/logprob"]
    np.testing.assert_allclose(curves.metrics["loss"]["test/logprob"], [2.5 / i for i in
                                                                         range(1, 6)])
    # the top-5 error was measured on tests only: no training series for it
    assert list(curves.metrics["top5_error"]) == ["test/logprob"]
    # the rate was divided after the test at step 20 (entries record the scale then in force)
    assert curves.lr_changes == [(20, 1.0, 0.1)]
    with pytest.raises(ShowError, match="no training history"):
        cost_curves([])


def test_cost_picture_with_a_learning_rate_drop(tmp_path):
    history = [{"step": 10 * i, "epoch": i / 2, "lr_scale": 1.0 if i < 3 else 0.1,
                "train/logprob/loss": 2.0 / i, "test/logprob/loss": 2.5 / i,
                "train/logprob/top1_error": 0.9 / i, "test/logprob/top1_error": 0.95 / i}
               for i in range(1, 6)]
    curves = cost_curves(history)
    path = draw.save_cost(curves, str(tmp_path / "cost.png"), "drop")
    pixels = read_png(path)
    assert (pixels.shape[1], pixels.shape[0]) == draw.cost_size(curves)
    assert_not_blank(pixels)
    # the drop's dashed line is red: some strongly red pixels
    red = (pixels[..., 0] > 180) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 50


def test_predictions_are_the_nets_top_five(run_dir):
    net = open_run(run_dir).net
    data = open_test_data(net)
    preds = predictions(net, data, count=6)
    x, labels = data.batch("test", np.arange(6))
    probs = net.predict(x)
    np.testing.assert_array_equal(preds.labels, labels)
    assert preds.top_classes.shape == (6, 5)
    for i in range(6):
        order = np.argsort(-probs[i], kind="stable")[:5]
        np.testing.assert_array_equal(preds.top_classes[i], order)
        np.testing.assert_allclose(preds.top_probs[i], probs[i, order])
    assert preds.class_names == [str(k) for k in range(10)]   # the synthetic set has no names
    assert preds.images.shape == (6, 32, 32, 3)
    assert preds.images.min() >= 0 and preds.images.max() <= 1


def write_cifar_batches(root, rng, classes=10, per_batch=24):
    """Two CIFAR-style batch files of 32x32 RGB images (the second is the test set)."""
    root.mkdir(parents=True)
    images = []
    for b in (1, 2):
        x = rng.integers(0, 256, (per_batch, 3, 32, 32), dtype=np.uint8)
        images.append(x)
        with open(root / f"data_batch_{b}", "wb") as f:
            pickle.dump({"data": x.reshape(per_batch, -1).T.copy(),
                         "labels": rng.integers(0, classes, per_batch).tolist()}, f)
    mean = images[0].reshape(per_batch, -1).mean(0).reshape(-1, 1)
    with open(root / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"thing{k}" for k in range(classes)], "num_vis": 3072,
                     "data_mean": mean}, f)
    return root


def test_predictions_on_the_runs_own_data_with_its_class_names(tmp_path, rng, capsys):
    data = write_cifar_batches(tmp_path / "cifar", rng)
    run = train(tmp_path / "run", "--data-path", str(data))
    capsys.readouterr()
    net = open_run(run).net
    preds = predictions(net, open_test_data(net), count=4)
    assert preds.class_names == [f"thing{k}" for k in range(10)]
    # the pictures are the stored images: the mean added back, on [0, 1]
    with open(data / "data_batch_2", "rb") as f:
        raw = pickle.load(f)["data"].T.reshape(-1, 3, 32, 32)[:4]
    np.testing.assert_allclose(preds.images, raw.transpose(0, 2, 3, 1) / 255.0, atol=1e-4)
    # the data moved: a clear error naming the path and --data-path, then --data-path works
    moved = tmp_path / "moved"
    shutil.move(str(data), str(moved))
    code, _, err = show(capsys, run, "--show-preds")
    assert code == 2 and str(data) in err and "--data-path" in err
    assert err.count("\n") == 1 and err.startswith("convnet-show: error:")
    code, paths, err = show(capsys, run, "--show-preds", "--data-path", moved)
    assert code == 0, err
    assert paths == [str(run / "preds.png")]
    assert_not_blank(read_png(paths[0]))


@pytest.mark.parametrize("argv, message", [
    (["{missing}", "--show-cost"], "no such run folder or checkpoint file"),
    (["{empty}", "--show-cost"], "no checkpoint.npz in this folder"),
    (["{run}", "--show-filters", "conv9"], "no layer 'conv9'; layers with filters: conv1, "
                                           "conv2, conv3, fc10"),
    (["{run}", "--show-filters", "pool1"], "layer 'pool1' (pool) has no weights; layers with "
                                           "filters: conv1, conv2, conv3, fc10"),
    (["{run}"], "nothing to show"),
    (["{run}", "--show-preds", "--num-preds", "0"], "--num-preds must be >= 1"),
    (["{junk}", "--show-cost"], "not a readable checkpoint"),
])
def test_errors_are_one_clear_line(run_dir, tmp_path, capsys, argv, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    places = {"missing": tmp_path / "nowhere", "empty": tmp_path / "empty", "run": run_dir,
              "junk": tmp_path / "junk.npz"}
    code, out, err = show(capsys, *[a.format(**places) for a in argv])
    assert code == 2 and not out
    assert err.startswith("convnet-show: error:") and err.count("\n") == 1, err
    assert message in err
    assert "Traceback" not in err


def test_a_net_saved_without_training_has_no_curves(tmp_path, capsys):
    net = convnet.Net.from_cfg(*CFG)
    net.save(tmp_path / "net.npz")
    code, _, err = show(capsys, tmp_path / "net.npz", "--show-cost")
    assert code == 2 and "no training history" in err
    # its filters are there all the same
    code, paths, err = show(capsys, tmp_path / "net.npz", "--show-filters", "conv1")
    assert code == 0 and paths == [str(tmp_path / "filters-conv1.png")]


def test_without_matplotlib_the_error_names_the_extra(run_dir, tmp_path, capsys, monkeypatch):
    import sys
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)   # import matplotlib raises ImportError
    code, _, err = show(capsys, run_dir, "--show-cost", "--out", tmp_path)
    assert code == 2 and 'pip install "convnet[show]"' in err
    assert not (tmp_path / "cost.png").exists()


def test_the_history_drawn_is_the_checkpoints(run_dir):
    meta, _ = checkpoint.load(run_dir / "checkpoint.npz")
    curves = cost_curves(open_run(run_dir).history)
    history = meta["trainer"]["history"]
    assert list(curves.steps) == [e["step"] for e in history] == [2, 4]
    np.testing.assert_allclose(curves.metrics["top1_error"]["test/logprob"],
                               [e["test/logprob/top1_error"] for e in history])
    assert json.dumps(meta["trainer"]["history"])  # plain JSON, as the trainer wrote it
    assert math.isclose(curves.epochs[-1], 1.0)


def test_help_lists_every_picture(capsys):
    with pytest.raises(SystemExit) as e:
        show_cli.main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--show-cost", "--show-filters", "--show-preds", "--show-neighbours",
                   "--train-features", "--out", "--data-path",
                   "--norm-filters", 'pip install "convnet[show]"'):
        assert option in text


def test_neighbours_are_the_nearest_training_images_in_the_layers_features(run_dir, tmp_path,
                                                                          capsys):
    code, paths, err = show(capsys, run_dir, "--show-neighbours", "fc10", "--num-queries", "3",
                            "--num-neighbours", "4", "--out", tmp_path)
    assert code == 0, err
    assert paths == [str(tmp_path / "neighbours-fc10.png")]
    run = open_run(run_dir)
    net, data = run.net, open_test_data(run.net, options=run.data_options)
    assert data.size("train") == 64 and data.size("test") == 32   # the run's own synthetic set
    pics = neighbour_pictures(net, data, "fc10", 3, 4, progress=False)
    pixels = read_png(paths[0])
    assert pixels.shape[1::-1] == draw.neighbours_size(pics)
    assert_not_blank(pixels)
    # brute force over the training split's features
    x_train, y_train = data.batch("train", np.arange(data.size("train")))
    x_test, y_test = data.batch("test", np.arange(3))
    train_f = net.features(x_train, "fc10").reshape(len(x_train), -1).astype(np.float64)
    test_f = net.features(x_test, "fc10").reshape(3, -1).astype(np.float64)
    d = np.linalg.norm(test_f[:, None] - train_f[None], axis=2)
    order = np.argsort(d, axis=1, kind="stable")[:, :4]
    np.testing.assert_array_equal(pics.neighbour_labels, y_train[order])
    np.testing.assert_allclose(pics.distances, np.take_along_axis(d, order, 1), rtol=1e-5)
    np.testing.assert_array_equal(pics.query_labels, y_test)
    assert pics.neighbours.shape[:2] == (3, 4) and pics.queries.shape[0] == 3


def test_neighbours_from_written_training_features(run_dir, tmp_path, capsys):
    code = train_cli.main(["-f", str(run_dir), "--write-features", "fc10", "--feature-path",
                           str(tmp_path / "train"), "--feature-split", "train", "--no-progress"])
    assert code == 0
    code = train_cli.main(["-f", str(run_dir), "--write-features", "fc10", "--feature-path",
                           str(tmp_path / "test"), "--no-progress"])
    assert code == 0
    capsys.readouterr()
    code, paths, err = show(capsys, run_dir, "--show-neighbours", "fc10", "--train-features",
                            tmp_path / "train", "--out", tmp_path)
    assert code == 0, err
    run = open_run(run_dir)
    data = open_test_data(run.net, options=run.data_options)
    computed = neighbour_pictures(run.net, data, "fc10", progress=False)
    read = neighbour_pictures(run.net, data, "fc10", features_folder=str(tmp_path / "train"))
    np.testing.assert_array_equal(read.neighbour_labels, computed.neighbour_labels)
    np.testing.assert_array_equal(read.distances, computed.distances)
    # the test split's features, or another layer's, are refused with the command that fixes it
    code, _, err = show(capsys, run_dir, "--show-neighbours", "fc10", "--train-features",
                        tmp_path / "test", "--out", tmp_path)
    assert code == 2 and err.count("\n") == 1
    assert "test split" in err and "--feature-split train" in err
    code, _, err = show(capsys, run_dir, "--show-neighbours", "pool9", "--out", tmp_path)
    assert code == 2 and "the net has no layer 'pool9'" in err
