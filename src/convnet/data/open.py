"""open_dataset: a data path (and optionally a provider name) to a provider, recognising the
formats by their files so that `--data-path` alone usually suffices."""

import os
from typing import Optional, Sequence

from .cifar import CifarBatches, Range
from .errors import DataError
from .folder import ImageFolder
from .idx import IDX_FILES, IdxDataset, candidates, find_idx
from .provider import Provider

PROVIDERS = ("cifar", "folder", "idx", "mnist")
FOLDER_MIN_SIZE = 256   # the paper's 256x256 images; the net's crop happens in augmentation


def detect(path: str) -> Optional[str]:
    """The provider name for the files at path, or None."""
    if os.path.isfile(os.path.join(path, "batches.meta")):
        return "cifar"
    if find_idx(path, "train_images") is not None:
        return "idx"
    if os.path.isdir(os.path.join(path, "train")):
        return "folder"
    return None


def folder_size(shape: Optional[Sequence[int]]) -> int:
    """The side image folders are scaled to for a data layer of shape (C, H, W) (None: unknown)."""
    return max(FOLDER_MIN_SIZE, *shape[1:]) if shape is not None else FOLDER_MIN_SIZE


def dataset_kind(path, provider: Optional[str] = None) -> str:
    """The provider name for `path`: `provider` checked, or recognised from the files. A path
    that is not a dataset folder is a DataError saying what was looked for."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(path, "no such file or folder")
    if not os.path.isdir(path):
        raise DataError(path, "is a file; a dataset is a folder (of batches, IDX files or "
                              "class folders)")
    name = provider.lower() if provider else detect(path)
    if name is None:
        stem, kind = IDX_FILES["train_images"]
        entries = sorted(os.listdir(path))
        found = ", ".join(entries[:8]) + (" ..." if len(entries) > 8 else "") or "nothing"
        raise DataError(path, f"no dataset recognised: looked for batches.meta (cuda-convnet "
                              f"batches), {' / '.join(candidates(stem, kind))} (MNIST IDX files) "
                              f"and a train/ folder of class folders (image folder); found "
                              f"{found}")
    if name not in PROVIDERS:
        raise ValueError(f"unknown data provider {provider!r}; valid: {', '.join(PROVIDERS)}")
    return "idx" if name == "mnist" else name


def open_dataset(path, provider: Optional[str] = None, shape: Optional[Sequence[int]] = None,
                 train_range: Range = None, test_range: Range = None,
                 skip_bad_images: bool = False) -> Provider:
    """The provider for `path`. provider: None (detect), "cifar", "folder", "idx" or "mnist" (the
    same as idx). shape: the net's data-layer (C, H, W); IDX images are made that shape, image
    folders are scaled to max(256, H, W) and cropped later by the augmentation. The ranges are
    cuda-convnet batch ranges, for cifar only; skip_bad_images applies to image folders."""
    path = os.fspath(path)
    name = dataset_kind(path, provider)
    if name != "cifar" and (train_range is not None or test_range is not None):
        raise ValueError(f"train_range / test_range select cuda-convnet batch files; the {name} "
                         f"provider has none")
    if shape is not None and len(shape) != 3:
        raise ValueError(f"shape must be the data layer's (C, H, W), got {tuple(shape)}")
    if name == "cifar":
        return CifarBatches(path, train_range=train_range, test_range=test_range)
    if name == "idx":
        return IdxDataset(path, shape=tuple(shape) if shape is not None else (1, 28, 28))
    return ImageFolder(path, size=folder_size(shape), skip_bad_images=skip_bad_images)
