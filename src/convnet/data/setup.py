"""From a data path and a net's data layer to what the trainer consumes: the provider, the
augmentation its options ask for, and the colour PCA (computed once, cached beside the data).

The crop follows the net: a data layer smaller than the stored images (AlexNet's 224 from 256x256
images, say) means random crops with reflections in training and the centre crop in testing, as
cuda-convnet's cropped providers did; a data layer the images' size means neither. `inner_size`
(v2's --inner-size) or `crop_border` (v1's --crop-border) set the crop explicitly."""

import hashlib
import os
import sys
from typing import Callable, Optional, Sequence

import numpy as np

from ..files import atomic_write
from .augment import AugmentedDataset, Augmentation, ColorPCA
from .errors import DataError
from .open import open_dataset
from .subset import ClassSubset, parse_classes

# cuda-convnet's provider names, and ours.
PROVIDER_ALIASES = {"cifar": "cifar", "cifar-cropped": "cifar", "image": "cifar",
                    "folder": "folder", "idx": "idx", "mnist": "idx"}


def _pca_cache_path(provider) -> str:
    root = getattr(provider, "path", None)
    tag = f"{provider.name}-{'x'.join(map(str, provider.image_shape))}-{provider.size('train')}"
    if root and os.access(root, os.W_OK):
        return os.path.join(root, f".convnet-pca-{tag}.npz")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(os.path.abspath(str(root)).encode()).hexdigest()[:16]
    return os.path.join(base, "convnet", f"{digest}-pca-{tag}.npz")


def colour_pca(provider, log: Callable[[str], None] = print) -> ColorPCA:
    """The training set's RGB PCA, from a cache file when one matches the data, else fitted on a
    sample of training images and cached (written atomically)."""
    path = _pca_cache_path(provider)
    try:
        with np.load(path) as f:
            return ColorPCA.from_dict({k: f[k] for k in f.files})
    except (OSError, KeyError, ValueError):
        pass
    log(f"fitting the colour PCA on training images of {provider.name} ...")
    pca = ColorPCA.from_provider(provider)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_write(path, durable=False) as f:
            np.savez(f, **pca.to_dict())
    except OSError as e:
        print(f"warning: could not cache the colour PCA at {path}: {e}", file=sys.stderr)
    return pca


def provider_name(provider: Optional[str]) -> Optional[str]:
    """Our provider name for a --data-provider value (cuda-convnet's names included); None
    stays None (recognised from the files)."""
    if provider is None:
        return None
    if provider not in PROVIDER_ALIASES:
        raise ValueError(f"unknown --data-provider {provider!r}; valid: "
                         f"{', '.join(sorted(PROVIDER_ALIASES))} (or synthetic without a "
                         "data path)")
    return PROVIDER_ALIASES[provider]


def crop_for(path, image_shape: Sequence[int], net_shape: Sequence[int],
             inner_size: Optional[int] = None, crop_border: Optional[int] = None) -> Optional[int]:
    """The square crop that takes images of image_shape (C, H, W, what the provider gives) to a
    data layer of net_shape, or None for whole images; a DataError or ValueError when they do
    not fit."""
    c, h, w = (int(s) for s in net_shape)
    sc, sh, sw = image_shape
    if sc != c:
        raise DataError(path, f"the images have {sc} channel(s); the net's data layer wants {c}")
    if inner_size is not None and crop_border is not None:
        raise ValueError("give --inner-size or --crop-border, not both")
    crop = inner_size or (sh - 2 * crop_border if crop_border is not None else None)
    if crop is None and (h, w) != (sh, sw):
        if h != w:
            raise DataError(path, f"the images are {sh}x{sw}; the net's data layer wants {h}x{w}, "
                                  "and crops are square")
        crop = h
    if crop is not None and (crop != h or crop != w):
        raise ValueError(f"a crop of {crop}x{crop} does not fit the net's data layer of "
                         f"{h}x{w}")
    if crop is not None and (crop > sh or crop > sw):
        raise DataError(path, f"the images are {sh}x{sw}, smaller than the {crop}x{crop} the "
                              "net's data layer wants")
    return crop


def for_net(path, net_shape: Sequence[int], provider: Optional[str] = None, *,
            inner_size: Optional[int] = None, crop_border: Optional[int] = None,
            flip: bool = True, color_noise: float = 0.0, train_range=None, test_range=None,
            skip_bad_images: bool = False, seed: int = 0, classes: Optional[str] = None,
            log: Callable[[str], None] = print) -> AugmentedDataset:
    """The dataset at `path` prepared for a data layer of shape net_shape (C, H, W); classes
    ('5-9', '0,2,4'): only those classes, numbered from 0 (data/subset.py)."""
    c, h, w = (int(s) for s in net_shape)
    source = open_dataset(path, provider=provider_name(provider), shape=(c, h, w),
                          train_range=train_range, test_range=test_range,
                          skip_bad_images=skip_bad_images)
    if classes is not None:
        source = ClassSubset(source, parse_classes(classes))
    crop = crop_for(path, source.image_shape, (c, h, w), inner_size, crop_border)
    pca = colour_pca(source, log) if color_noise > 0 else None
    # Reflections come with crops, as in cuda-convnet's cropped providers; a net fed whole
    # images (MNIST digits, say) sees them as they are.
    augmentation = Augmentation(crop=crop, flip=flip and crop is not None,
                                color_noise=color_noise, pca=pca)
    return AugmentedDataset(source, augmentation, seed=seed)
