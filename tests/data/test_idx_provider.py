"""IdxDataset on MNIST IDX files written here (plain, gzipped, dotted names): native shape,
padding, shrinking and grey-to-colour channels against independent computations, and every kind
of bad input giving a DataError that names the file."""

import os

import numpy as np
import pytest

from convnet.data.errors import DataError
from convnet.data.idx import IdxDataset
from sample_datasets import F32_TOL, all_images, check_provider, idx_bytes, write_idx


@pytest.mark.parametrize("gz,dot", [(False, False), (True, False), (False, True)])
def test_idx_native_shape(tmp_path, rng, gz, dot):
    data = write_idx(tmp_path, rng, gz=gz, dot=dot)
    p = IdxDataset(tmp_path, shape=(1, 6, 6))
    check_provider(p, (1, 6, 6), 4)
    assert p.label_names == ["0", "1", "2", "3"]
    x, y = all_images(p, "train")
    np.testing.assert_allclose(x[:, 0] + p.mean[0], data["train"][0], atol=F32_TOL)
    np.testing.assert_allclose(p.mean[0], data["train"][0].mean(0), atol=F32_TOL)
    assert y.tolist() == data["train"][1].tolist()


def test_idx_pad_shrink_and_channels(tmp_path, rng):
    data = write_idx(tmp_path, rng)
    raw = data["train"][0].astype(np.float32)
    padded = IdxDataset(tmp_path, shape=(3, 10, 9))   # 6x6 centred: rows 2..7, columns 1..6
    check_provider(padded, (3, 10, 9), 4)
    x, _ = all_images(padded, "train")
    x += padded.mean
    np.testing.assert_array_equal(x[:, 0], x[:, 2])
    np.testing.assert_allclose(x[:, 1, 2:8, 1:7], raw, atol=F32_TOL)
    assert not x[:, :, :2].any() and not x[:, :, 8:].any() and not x[:, :, :, 0].any()
    assert not x[:, :, :, 7:].any()
    # shrinking: a left-white, right-black image stays so at 4x4 (columns 0 and 3 untouched)
    two = tmp_path / "two"
    half = np.zeros((4, 8, 8), np.uint8)
    half[:, :, :4] = 255
    for stem, arr in (("train-images-idx3-ubyte", half), ("t10k-images-idx3-ubyte", half),
                      ("train-labels-idx1-ubyte", np.arange(4, dtype=np.uint8)),
                      ("t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))):
        two.mkdir(exist_ok=True)
        (two / stem).write_bytes(idx_bytes(arr))
    small = IdxDataset(two, shape=(1, 4, 4))
    x, _ = small.images("test", [0])
    x += small.mean
    assert (x[0, 0, :, 0] == 255).all() and (x[0, 0, :, 3] == 0).all()


def test_idx_bad_inputs(tmp_path, rng):
    write_idx(tmp_path / "a", rng)
    f = tmp_path / "a" / "train-images-idx3-ubyte"
    blob = f.read_bytes()
    f.write_bytes(blob[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated: 438 bytes, but the "
                                        r"header's dimensions \(12, 6, 6\) need 448"):
        IdxDataset(tmp_path / "a", shape=(1, 6, 6))
    f.write_bytes(b"\x08\x03" + blob[2:])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: not an IDX file: magic number"):
        IdxDataset(tmp_path / "a", shape=(1, 6, 6))
    f.write_bytes(blob[:2] + b"\x0d" + blob[3:])
    with pytest.raises(DataError, match="element type 0x0d, expected 0x08"):
        IdxDataset(tmp_path / "a", shape=(1, 6, 6))

    write_idx(tmp_path / "gz", rng, gz=True)
    g = tmp_path / "gz" / "t10k-labels-idx1-ubyte.gz"
    g.write_bytes(g.read_bytes()[:-8])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: unreadable gzip stream"):
        IdxDataset(tmp_path / "gz", shape=(1, 6, 6))

    write_idx(tmp_path / "lab", rng)
    (tmp_path / "lab" / "t10k-labels-idx1-ubyte").write_bytes(
        idx_bytes(np.array([0, 1, 2, 3, 9, 0], np.uint8)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: label 9 at position 4"):
        IdxDataset(tmp_path / "lab", shape=(1, 6, 6))
    (tmp_path / "lab" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match="5 labels for the 6 images of t10k-images-idx3-ubyte"):
        IdxDataset(tmp_path / "lab", shape=(1, 6, 6))
    os.remove(tmp_path / "lab" / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="no test labels file"):
        IdxDataset(tmp_path / "lab")
