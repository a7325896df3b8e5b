"""open_dataset: which provider a path's contents call for, and its errors."""

import pytest

from convnet.data.cifar import CifarBatches
from convnet.data.errors import DataError
from convnet.data.folder import ImageFolder
from convnet.data.idx import IdxDataset
from convnet.data.open import open_dataset
from sample_datasets import make_folder, write_batches, write_idx


def test_open_dataset_detection(tmp_path, rng):
    write_batches(tmp_path / "c", rng)
    write_idx(tmp_path / "m", rng, gz=True)
    make_folder(tmp_path / "f", rng)
    assert isinstance(open_dataset(tmp_path / "c", train_range="1", test_range="2"), CifarBatches)
    p = open_dataset(tmp_path / "m", shape=(1, 8, 8))
    assert isinstance(p, IdxDataset) and p.image_shape == (1, 8, 8)
    assert isinstance(open_dataset(tmp_path / "m", provider="mnist", shape=(1, 6, 6)), IdxDataset)
    with pytest.raises(ValueError, match="batch files"):
        open_dataset(tmp_path / "m", train_range="1")
    f = open_dataset(tmp_path / "f", shape=(3, 8, 8))
    assert isinstance(f, ImageFolder) and f.image_shape == (3, 256, 256)
    with pytest.raises(DataError, match="no such file"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="looked for batches.meta .* train/ folder"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown data provider"):
        open_dataset(tmp_path / "c", provider="lmdb")
