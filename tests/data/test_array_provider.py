"""ArrayDataset: in-memory arrays as a provider, its mean, and the errors naming <array>."""

import numpy as np
import pytest

from convnet.data.errors import DataError
from convnet.data.memory import ArrayDataset
from sample_datasets import F32_TOL, check_provider


def test_array_dataset(rng):
    x = rng.integers(0, 256, (6, 2, 3, 3), dtype=np.uint8)
    p = ArrayDataset((x, [0, 1, 2, 0, 1, 2]), (x[:2], [2, 1]), label_names=["a", "b", "c"])
    check_provider(p, (2, 3, 3), 3)
    np.testing.assert_allclose(p.images("train", [3])[0][0], x[3] - x.mean(0), atol=F32_TOL)
    q = ArrayDataset((x.astype(np.float64), np.arange(6)), (x, np.arange(6)), subtract_mean=False)
    assert q.classes == 6 and not q.mean.any()
    with pytest.raises(DataError, match=r"<array> \(train labels\): label 3 at position 0"):
        ArrayDataset((x, [3] * 6), (x, [0] * 6), classes=3)
    with pytest.raises(DataError, match="<array>: the test split has 6 images but 2 labels"):
        ArrayDataset((x, [0] * 6), (x, [0, 1]))
    with pytest.raises(DataError, match="<array>: train images are"):
        ArrayDataset((x, [0] * 6), (x[:, :1], [0] * 6))
    with pytest.raises(DataError, match="NaN"):
        ArrayDataset((np.full((1, 1, 2, 2), np.nan), [0]), (x, [0] * 6))
