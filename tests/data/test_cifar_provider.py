"""CifarBatches on cuda-convnet batches written here: both data layouts, Python 2 style keys, the
official release's layout, batch ranges, lazy loading, and every kind of bad input giving a
DataError that names the file."""

import os
import pickle

import numpy as np
import pytest

from convnet.data.cifar import CifarBatches, format_range, parse_range
from convnet.data.errors import DataError
from sample_datasets import F32_TOL, all_images, check_provider, write_batches


@pytest.mark.parametrize("layout,bytes_keys", [("col", False), ("row", True)])
def test_cifar_layouts_and_mean(tmp_path, rng, layout, bytes_keys):
    raw = write_batches(tmp_path, rng, layout=layout, bytes_keys=bytes_keys)
    p = CifarBatches(tmp_path)
    check_provider(p, (3, 4, 4), 3)
    assert p.label_names == ["c0", "c1", "c2"] and p.in_memory
    assert p.batch_numbers("train") == [1, 2] and p.batch_numbers("test") == [3]
    assert p.batch_bounds("train") == [(0, 5), (5, 10)]
    x, y = all_images(p, "train")
    rawx = np.concatenate([raw[1][0], raw[2][0]]).astype(np.float32)
    np.testing.assert_allclose(x, rawx - p.mean, atol=F32_TOL)
    assert y.tolist() == raw[1][1] + raw[2][1]
    # any order, any repetition: image i of the split is always the same
    xi, yi = p.images("train", [7, 2, 7])
    np.testing.assert_array_equal(xi, x[[7, 2, 7]])
    assert yi.tolist() == [y[7], y[2], y[7]]
    xt, yt = all_images(p, "test")
    np.testing.assert_allclose(xt + p.mean, raw[3][0], atol=F32_TOL)
    assert yt.tolist() == raw[3][1]


def test_cifar_official_release_layout(tmp_path, rng):
    """data_batch_1..N plus test_batch, rows per image, no data_mean: the mean is computed."""
    raw = write_batches(tmp_path, rng, batches=3, layout="row", mean=False)
    os.rename(tmp_path / "data_batch_3", tmp_path / "test_batch")
    write_batches(tmp_path / "unused", rng)   # a subfolder must not confuse it
    p = CifarBatches(tmp_path)
    assert p.size("train") == 10 and p.size("test") == 5
    rawx = np.concatenate([raw[1][0], raw[2][0]]).astype(np.float64)
    np.testing.assert_allclose(p.mean, rawx.mean(0), atol=F32_TOL)
    check_provider(p, (3, 4, 4), 3)


def test_cifar_ranges(tmp_path, rng):
    raw = write_batches(tmp_path, rng, batches=4)
    p = CifarBatches(tmp_path, train_range="2-3", test_range=[1])
    assert p.size("train") == 10 and p.size("test") == 5
    np.testing.assert_allclose(p.images("test", range(5))[0] + p.mean, raw[1][0], atol=F32_TOL)
    assert CifarBatches(tmp_path, train_range="1").batch_numbers("test") == [2, 3, 4]
    assert CifarBatches(tmp_path, test_range="4").batch_numbers("train") == [1, 2, 3]
    assert parse_range("1-3,5") == [1, 2, 3, 5] and format_range([1, 2, 3, 5]) == "1-3,5"
    with pytest.raises(ValueError, match="empty"):
        parse_range("3-1")
    with pytest.raises(DataError, match=r"batches \[7\], which do not exist"):
        CifarBatches(tmp_path, train_range="1-2", test_range="7")
    write_batches(tmp_path / "m", rng, batches=3, meta_extra={"train_range": "2-3",
                                                              "test_range": "1"})
    assert CifarBatches(tmp_path / "m").batch_numbers("train") == [2, 3]
    write_batches(tmp_path / "one", rng, batches=1)
    with pytest.raises(DataError, match="no training batches"):
        CifarBatches(tmp_path / "one")
    assert CifarBatches(tmp_path / "one", "1", "1").size("test") == 5


def test_cifar_lazy_matches_in_memory(tmp_path, rng):
    write_batches(tmp_path, rng, batches=4, n=6)
    eager = CifarBatches(tmp_path)
    lazy = CifarBatches(tmp_path, in_memory=False, cached_batches=1)
    assert not lazy.in_memory and lazy.size("train") == 18
    order = rng.permutation(18)
    for a, b in zip(eager.images("train", order), lazy.images("train", order)):
        np.testing.assert_array_equal(a, b)
    assert len(lazy._lru) == 1   # never more batches held than asked for
    lazy.close()


def test_cifar_bad_inputs(tmp_path, rng):
    def fresh(name, **kw):
        d = tmp_path / name
        write_batches(d, rng, **kw)
        return d

    d = fresh("label")
    with open(d / "data_batch_2", "wb") as f:
        pickle.dump({"data": np.zeros((48, 2), np.uint8), "labels": [0, 3]}, f)
    with pytest.raises(DataError, match=r"data_batch_2: label 3 at position 1 is outside 0\.\.2"):
        CifarBatches(d)

    d = fresh("trunc")
    blob = (d / "data_batch_1").read_bytes()
    (d / "data_batch_1").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DataError, match="data_batch_1: not a readable pickle"):
        CifarBatches(d)

    d = fresh("numvis")
    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({"data": np.zeros((47, 5), np.uint8), "labels": [0] * 5}, f)
    with pytest.raises(DataError, match=r"data_batch_3: data has shape \(47, 5\), "
                                        r"expected \(48, 5\)"):
        CifarBatches(d)

    d = fresh("meta", meta_extra={"num_vis": 75})
    with pytest.raises(DataError, match="batches.meta: data_mean has 48 values"):
        CifarBatches(d)
    d = fresh("meta2", meta_extra={"num_vis": 50})
    with pytest.raises(DataError, match="batches.meta: num_vis 50 is not 3 x s x s"):
        CifarBatches(d)

    d = fresh("evil")
    with open(d / "data_batch_1", "wb") as f:   # a pickle that would run a command
        f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(DataError, match="refusing to load os.system"):
        CifarBatches(d)

    d = fresh("nan")
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({"data": np.full((48, 5), np.nan, np.float32), "labels": [0] * 5}, f)
    with pytest.raises(DataError, match="data_batch_1: 240 pixel values are NaN"):
        CifarBatches(d)

    d = fresh("nometa")
    os.remove(d / "batches.meta")
    with pytest.raises(DataError, match="batches.meta: file not found"):
        CifarBatches(d)
