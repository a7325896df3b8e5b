"""What every data provider offers the trainer, the augmentation and the background loader.

A provider holds two splits, "train" and "test", of labelled images and hands out any subset of
either by index, so that the trainer decides the order (from its seed and epoch) and a resumed run
asks for exactly the images an uninterrupted one would. Images come out as float32 NCHW with the
provider's mean image subtracted (the paper's only preprocessing); augmentation (crops,
reflections, colour noise) happens downstream, on these arrays.
"""

from typing import List, Sequence, Tuple

import numpy as np


class Provider:
    name: str = "provider"
    classes: int                   # number of classes; labels are 0 .. classes-1
    label_names: List[str]
    image_shape: Tuple[int, int, int]   # (C, H, W) of what images() returns

    def size(self, split: str) -> int:
        raise NotImplementedError

    def images(self, split: str, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        """(float32 (N, C, H, W), mean subtracted; int64 (N,) labels) for the given indices."""
        raise NotImplementedError

    def labels(self, split: str) -> np.ndarray:
        """int64 (N,): every label of the split, in index order. This default reads the images
        a thousand at a time; providers that hold the labels return them directly."""
        n = self.size(split)
        return np.concatenate([self.images(split, np.arange(i, min(n, i + 1000)))[1]
                               for i in range(0, n, 1000)] or [np.zeros(0, np.int64)])

    @property
    def mean(self) -> np.ndarray:
        """The float32 (C, H, W) mean image that images() subtracts (zeros when none)."""
        # The providers of this package keep it in self._mean; another overrides this property.
        try:
            return self._mean
        except AttributeError:
            raise NotImplementedError from None

    def close(self) -> None:
        """Release open files; the provider may not be used afterwards."""
