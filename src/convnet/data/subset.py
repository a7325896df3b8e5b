"""Some of a dataset's classes as a dataset of their own (convnet-train --classes): transfer
learning trains on one part of a dataset's classes and fine-tunes on another (MNIST's digits 0-4,
then 5-9). Class k of the subset is the k-th kept class, in ascending order; images keep the
source's order within each split, and the source's mean image (the subset's images are
preprocessed exactly as the whole set's)."""

from typing import List, Sequence, Tuple

import numpy as np

from .errors import DataError
from .memory import check_indices, check_split
from .provider import Provider


def parse_classes(text: str) -> List[int]:
    """'5-9' or '0,2,4' or '0-2,7' as a sorted list of class numbers; ValueError when malformed."""
    kept = set()
    for token in (t.strip() for t in str(text).split(",")):
        first, dash, last = token.partition("-")
        try:
            lo, hi = int(first), int(last) if dash else int(first)
        except ValueError:
            raise ValueError(f"--classes {text}: {token!r} is not a class number or a range A-B "
                             "(e.g. 5-9 or 0,2,4)") from None
        if lo < 0 or hi < lo:
            raise ValueError(f"--classes {text}: {token!r} is not an ascending range of class "
                             "numbers >= 0")
        kept.update(range(lo, hi + 1))
    return sorted(kept)


class ClassSubset(Provider):
    def __init__(self, source: Provider, classes: Sequence[int]):
        self.source, self.kept = source, [int(c) for c in classes]
        missing = [c for c in self.kept if c >= source.classes]
        if missing:
            raise DataError(getattr(source, "path", source.name),
                            f"--classes: the data has classes 0-{source.classes - 1}; "
                            f"{', '.join(map(str, missing))} do not exist")
        self.name = source.name
        self.path = getattr(source, "path", None)
        self.image_shape = source.image_shape
        self.classes = len(self.kept)
        names = list(source.label_names)
        self.label_names = [names[c] if c < len(names) else str(c) for c in self.kept]
        lookup = np.full(source.classes, -1, np.int64)
        lookup[self.kept] = np.arange(len(self.kept))
        self._lookup = lookup
        # The source's indices of the kept images, split by split.
        self._index = {split: np.flatnonzero(lookup[source.labels(split)] >= 0)
                       for split in ("train", "test")}
        if self._index["train"].size == 0:
            raise DataError(self.path or self.name, f"--classes: no training images of classes "
                                                    f"{', '.join(map(str, self.kept))}")

    @property
    def mean(self) -> np.ndarray:
        return self.source.mean

    def size(self, split: str) -> int:
        return len(self._index[check_split(split)])

    def labels(self, split: str) -> np.ndarray:
        return self._lookup[self.source.labels(split)[self._index[check_split(split)]]]

    def images(self, split: str, indices: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
        idx = check_indices(self.path or self.name, check_split(split), indices,
                            self.size(split))
        x, y = self.source.images(split, self._index[split][idx])
        return x, self._lookup[y]

    def close(self) -> None:
        self.source.close()
