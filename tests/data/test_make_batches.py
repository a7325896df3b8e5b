"""make_batches: an image folder converted into cuda-convnet batches holds the same images and
labels, is not rewritten when complete, and is rewritten cleanly when the parameters change."""

import os

import numpy as np
import pytest

from convnet.data.cifar import CifarBatches
from convnet.data.folder import ImageFolder
from convnet.data.make_batches import main as make_batches_main
from convnet.data.make_batches import make_batches
from sample_datasets import all_images, make_folder


def test_make_batches_round_trip(tmp_path, rng, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_folder(src, rng)
    make_batches(src, dst, size=16, batch_size=4, workers=2)
    folder = ImageFolder(src, size=16)
    batches = CifarBatches(dst)
    assert batches.label_names == folder.label_names and batches.image_shape == (3, 16, 16)
    assert batches.batch_numbers("train") == [1, 2, 3] and batches.batch_numbers("test") == [4]
    np.testing.assert_allclose(batches.mean, folder.mean, atol=1e-6)
    for split in ("train", "test"):
        fx, fy = all_images(folder, split)
        bx, by = all_images(batches, split)
        key = {x.tobytes(): y for x, y in zip(fx, fy)}
        assert len(bx) == len(fx) and sorted(x.tobytes() for x in bx) == sorted(key)
        assert all(key[x.tobytes()] == y for x, y in zip(bx, by))
    lazy = CifarBatches(dst, in_memory=False)   # sizes from the meta's batch_sizes, no scan
    for a, b in zip(all_images(lazy, "train"), all_images(batches, "train")):
        np.testing.assert_array_equal(a, b)
    assert "images/s" in capsys.readouterr().err
    # again on a complete output: nothing rewritten
    mtimes = {f: os.stat(dst / f).st_mtime_ns for f in os.listdir(dst)}
    assert make_batches_main([str(src), str(dst), "--size", "16", "--batch-size", "4",
                              "--quiet"]) == 0
    assert {f: os.stat(dst / f).st_mtime_ns for f in os.listdir(dst)} == mtimes
    # different parameters: rewritten cleanly, stale batches removed
    make_batches(src, dst, size=16, batch_size=8, progress=False)
    assert sorted(os.listdir(dst)) == ["batches.meta", "data_batch_1", "data_batch_2",
                                       "data_batch_3"]
    assert CifarBatches(dst).size("train") == 9
    with pytest.raises(SystemExit):
        make_batches_main(["--help"])
