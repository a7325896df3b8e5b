"""--classes: some of a dataset's classes as a dataset of their own, numbered from 0 in ascending
order, with the source's images, order and mean; from every provider (the labels each holds),
through convnet-train (kept on resume, refused for the synthetic set) and convnet-show."""

import numpy as np
import pytest

import convnet
from convnet.cli.train import main
from convnet.data import ArrayDataset, DataError, for_net
from convnet.data.subset import ClassSubset, parse_classes
from test_training_from_data import QUIET, write_batches, write_cfg, write_folder, write_idx


@pytest.mark.parametrize("text, classes", [
    ("5-9", [5, 6, 7, 8, 9]), ("0,2,4", [0, 2, 4]), ("3", [3]), ("7-8, 1", [1, 7, 8]),
])
def test_parse_classes(text, classes):
    assert parse_classes(text) == classes


@pytest.mark.parametrize("text, message", [
    ("a-b", "'a-b' is not a class number or a range"), ("5-2", "not an ascending range"),
    ("-1", "'-1' is not a class number"),
])
def test_bad_class_lists(text, message):
    with pytest.raises(ValueError, match=message):
        parse_classes(text)


def test_a_subset_is_the_sources_images_of_those_classes(rng):
    x = rng.integers(0, 256, (40, 1, 6, 5), dtype=np.uint8)
    y = rng.integers(0, 6, 40)
    source = ArrayDataset((x, y), (x[:15], y[:15]), label_names=list("abcdef"))
    subset = ClassSubset(source, [1, 4, 5])
    keep = np.flatnonzero(np.isin(y, [1, 4, 5]))
    assert subset.size("train") == len(keep) and subset.classes == 3
    assert subset.label_names == ["b", "e", "f"]
    images, labels = subset.images("train", np.arange(len(keep))[::-1])
    expect, expect_labels = source.images("train", keep[::-1])
    np.testing.assert_array_equal(images, expect)
    np.testing.assert_array_equal(labels, np.searchsorted([1, 4, 5], expect_labels))
    np.testing.assert_array_equal(subset.labels("train"), np.searchsorted([1, 4, 5], y[keep]))
    np.testing.assert_array_equal(subset.mean, source.mean)
    assert subset.size("test") == np.isin(y[:15], [1, 4, 5]).sum()
    with pytest.raises(DataError, match="classes 0-5; 6, 9 do not exist"):
        ClassSubset(source, [4, 6, 9])


@pytest.mark.parametrize("kind", ["cifar", "folder", "idx"])
def test_every_provider_gives_its_labels(tmp_path, rng, kind):
    if kind == "cifar":
        path, shape = write_batches(tmp_path / "batches", rng), (3, 24, 24)
    elif kind == "folder":
        path, shape = write_folder(tmp_path / "images", rng), (3, 24, 24)
    else:
        path, shape = write_idx(tmp_path / "mnist", rng), (1, 20, 20)
    whole, part = for_net(path, shape), for_net(path, shape, classes="1,3")
    for split in ("train", "test"):
        labels = whole.provider.labels(split)
        n = whole.size(split)
        np.testing.assert_array_equal(labels, whole.provider.images(split, np.arange(n))[1])
        assert part.size(split) == np.isin(labels, [1, 3]).sum()
    _, labels = part.batch("test", np.arange(part.size("test")))
    assert set(labels.tolist()) <= {0, 1} and part.classes == 2


def test_convnet_train_on_some_classes_and_resume(tmp_path, rng, capsys):
    path = write_batches(tmp_path / "batches", rng)
    cfg = write_cfg(tmp_path, 3, 24)
    save = ["--save-path", str(tmp_path / "run.npz")]
    code = main(cfg + QUIET + ["--data-path", str(path), "--classes", "0,2", "--epochs", "1"]
                + save)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "(2 classes," in out
    net = convnet.Net.load(tmp_path / "run.npz")
    assert net.data_info["label_names"] == ["red", "blue"]
    code = main(["-f", str(tmp_path / "run.npz"), "--epochs", "2", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "(2 classes," in out and "--classes 0,2" in out, out
    # convnet-show opens the run's data the same way
    from convnet.show import open_run, open_test_data
    run = open_run(tmp_path / "run.npz")
    data = open_test_data(run.net, options=run.data_options)
    assert data.classes == 2 and data.label_names == ["red", "blue"]


def test_classes_of_the_synthetic_set_are_refused(capsys, tmp_path):
    code = None
    try:
        code = main(write_cfg(tmp_path, 3, 24) + QUIET + ["--classes", "0-1"])
    except SystemExit as e:
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and "--synthetic-classes" in err and err.count("\n") == 1
