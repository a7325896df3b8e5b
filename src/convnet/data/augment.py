"""Data augmentation as in the paper: random crops and horizontal reflections for training, the
centre crop (or the ten corner/centre views and their reflections) for testing, and PCA colour
noise. Everything random is drawn from a generator seeded by the batch's key, so the augmentation of
a batch is a pure function of (images, key): any worker thread may compute any batch, in any order,
and a resumed run sees exactly the crops, flips and colour offsets an uninterrupted one would.

Layouts: images are float32 (N, C, H, W), as providers return them (mean subtracted); crops are
square, crop x crop, taken from images that may be rectangular.
"""

import operator
import zlib
from typing import Optional, Sequence, Tuple

import numpy as np

# Appended to every key before seeding, so the augmentation streams never coincide with another
# consumer of the same counters (the trainer's batch order uses [seed, 1, epoch]).
AUGMENT_TAG = 0x61756731      # "aug1"
PCA_SAMPLE_TAG = 0x70636131   # "pca1": which training images ColorPCA.from_provider reads

# A fitted covariance is symmetric positive semi-definite; eigh returns tiny negative eigenvalues
# for rank-deficient data (e.g. grey images): above this relative size one is a real error.
_NEGATIVE_EIGENVALUE_TOL = 1e-9
# Loaded eigenvectors must be orthonormal to this accuracy (float64 eigh gives ~1e-15; a cache
# written as float32 still passes).
_ORTHONORMAL_TOL = 1e-5


def _rng(key) -> np.random.Generator:
    try:
        words = [operator.index(k) for k in key]
    except TypeError:
        raise TypeError(f"augmentation key must be a tuple of ints, got {key!r}") from None
    if any(k < 0 for k in words):
        raise ValueError(f"augmentation key must hold non-negative ints, got {key!r}")
    return np.random.default_rng(words + [AUGMENT_TAG])


def _check_images(images, what="images") -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"{what} must be (N, C, H, W), got shape {images.shape}")
    return images


class ColorPCA:
    """The principal components of the training set's pixel colours: `eigenvalues` (C,), the
    variances along each component in decreasing order, and `eigenvectors` (C, C), one unit
    component per column (eigenvectors[:, i] belongs to eigenvalues[i]). C is 3 for RGB; any
    channel count works (for one channel the noise is a brightness offset)."""

    def __init__(self, eigenvalues, eigenvectors):
        values = np.asarray(eigenvalues, np.float64)
        vectors = np.asarray(eigenvectors, np.float64)
        if values.ndim != 1 or values.size == 0 or vectors.shape != (values.size, values.size):
            raise ValueError(f"colour PCA: eigenvalues must be (C,) and eigenvectors (C, C), got "
                             f"{values.shape} and {vectors.shape}")
        if not (np.all(np.isfinite(values)) and np.all(np.isfinite(vectors))):
            raise ValueError("colour PCA: eigenvalues and eigenvectors must be finite")
        if np.any(values < 0):
            raise ValueError(f"colour PCA: eigenvalues are variances and cannot be negative, got "
                             f"{values}")
        gram_error = np.abs(vectors.T @ vectors - np.eye(values.size)).max()
        if gram_error > _ORTHONORMAL_TOL:
            raise ValueError(f"colour PCA: the eigenvectors are not orthonormal (|P^T P - I| = "
                             f"{gram_error:.2g}); is this a colour PCA at all?")
        self.eigenvalues, self.eigenvectors = values, vectors

    @property
    def channels(self) -> int:
        return self.eigenvalues.size

    @property
    def covariance(self) -> np.ndarray:
        """The (C, C) pixel covariance this PCA was fitted to: P diag(l) P^T."""
        return (self.eigenvectors * self.eigenvalues) @ self.eigenvectors.T

    @classmethod
    def from_covariance(cls, covariance) -> "ColorPCA":
        cov = np.asarray(covariance, np.float64)
        if cov.ndim != 2 or cov.shape[0] != cov.shape[1] or cov.shape[0] == 0:
            raise ValueError(f"colour PCA: the covariance must be (C, C), got {cov.shape}")
        if not np.all(np.isfinite(cov)):
            raise ValueError("colour PCA: the pixel covariance is not finite (NaN or inf pixels?)")
        values, vectors = np.linalg.eigh((cov + cov.T) / 2)
        order = np.argsort(values)[::-1]
        values, vectors = values[order], vectors[:, order]
        if values[-1] < -_NEGATIVE_EIGENVALUE_TOL * max(values[0], 1e-300):
            raise ValueError(f"colour PCA: the covariance is not positive semi-definite "
                             f"(eigenvalues {values})")
        return cls(np.maximum(values, 0.0), vectors)

    @classmethod
    def fit(cls, pixels) -> "ColorPCA":
        """PCA of pixel colours given as an (M, C) array, one pixel per row; the covariance is
        computed in float64 whatever the input type (float32 sums over millions of pixels lose
        digits)."""
        pixels = np.asarray(pixels)
        if pixels.ndim != 2 or pixels.shape[0] < 2 or pixels.shape[1] < 1:
            raise ValueError(f"colour PCA: pixels must be (M, C) with M >= 2, got shape "
                             f"{pixels.shape}")
        stats = _Moments()
        stats.add(pixels)
        return cls.from_covariance(stats.covariance())

    @classmethod
    def from_provider(cls, provider, samples: int = 1024, split: str = "train", seed: int = 0,
                      chunk: int = 32) -> "ColorPCA":
        """Fit to the pixels of at most `samples` images of `split`, chosen without replacement by
        `seed` (so the same data gives the same PCA), read `chunk` images at a time and reduced to
        running moments, so memory stays bounded for 256x256 images too. The provider's mean
        image is added back first: the paper's PCA is of the raw RGB values, not of the
        mean-subtracted ones (which would miss the colour variation across image positions)."""
        if samples < 1 or chunk < 1:
            raise ValueError(f"colour PCA: samples and chunk must be >= 1, got {samples}, {chunk}")
        n = provider.size(split)
        if n < 1:
            raise ValueError(f"colour PCA: the {split!r} split of {provider.name!r} is empty")
        rng = np.random.default_rng([seed, PCA_SAMPLE_TAG])
        chosen = np.sort(rng.choice(n, size=min(samples, n), replace=False))
        mean = np.asarray(provider.mean, np.float64)
        stats = _Moments()
        for start in range(0, len(chosen), chunk):
            images, _ = provider.images(split, chosen[start:start + chunk])
            images = _check_images(images, f"{provider.name} images") + mean
            stats.add(np.moveaxis(images, 1, -1).reshape(-1, images.shape[1]))
        return cls.from_covariance(stats.covariance())

    def noise(self, n: int, std: float, rng: np.random.Generator) -> np.ndarray:
        """(n, C) float64 colour offsets, one per image: P (a * sqrt(l)) with a ~ N(0, std^2).

        The paper writes P (a * l) with a ~ N(0, 0.1). Its l are variances, in squared pixel
        units, so that formula's offsets change shape with the pixel scale (a 0..1 image gets
        offsets far smaller, relative to its spread, than a 0..255 one). With standard
        deviations sqrt(l) the offsets' covariance is exactly std^2 times the training pixels'
        covariance at any scale: std = 0.1 shifts an image's colour by a tenth of the typical
        colour variation, along the directions in which natural colours vary."""
        if std < 0:
            raise ValueError(f"colour noise std must be >= 0, got {std}")
        a = rng.standard_normal((n, self.channels)) * std
        return (a * np.sqrt(self.eigenvalues)) @ self.eigenvectors.T

    def to_dict(self) -> dict:
        """Plain float64 arrays (np.savez(path, **pca.to_dict()) caches it beside the data)."""
        return {"eigenvalues": self.eigenvalues.copy(), "eigenvectors": self.eigenvectors.copy()}

    @classmethod
    def from_dict(cls, d) -> "ColorPCA":
        missing = {"eigenvalues", "eigenvectors"} - set(d)
        if missing:
            raise ValueError(f"colour PCA: missing {sorted(missing)} (have {sorted(d)})")
        return cls(d["eigenvalues"], d["eigenvectors"])

    def __repr__(self):
        return f"ColorPCA(eigenvalues={np.array2string(self.eigenvalues, precision=4)})"


class _Moments:
    """Running mean and centred sum of squares of pixel colours, merged chunk by chunk (Chan et
    al.'s pairwise update) so that neither memory nor cancellation grows with the pixel count."""

    def __init__(self):
        self.count, self.mean, self.m2 = 0, None, None

    def add(self, pixels):
        x = np.asarray(pixels, np.float64)
        n = x.shape[0]
        if n == 0:
            return
        mean = x.mean(axis=0)
        centred = x - mean
        m2 = centred.T @ centred
        if self.count == 0:
            self.count, self.mean, self.m2 = n, mean, m2
            return
        if mean.shape != self.mean.shape:
            raise ValueError(f"colour PCA: pixels with {mean.size} channels after "
                             f"{self.mean.size}")
        total = self.count + n
        delta = mean - self.mean
        self.m2 = self.m2 + m2 + np.outer(delta, delta) * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.count = total

    def covariance(self):
        if self.count < 2:
            raise ValueError(f"colour PCA: needs at least 2 pixels, got {self.count}")
        return self.m2 / (self.count - 1)


def _output(out, shape) -> np.ndarray:
    """`out` checked to be a float32 C-contiguous array of `shape`, or a new one."""
    if out is None:
        return np.empty(shape, np.float32)
    if out.shape != tuple(shape) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {tuple(shape)}, got "
                         f"{out.dtype} {out.shape}")
    return out


class Augmentation:
    """What happens to images between the provider and the net.

    crop: side of the square patches (None: whole images, no cropping). flip: reflect training
    images horizontally with probability 1/2. color_noise: the std of the PCA coefficients (the
    paper's 0.1; 0 disables it, and then `pca` is not needed)."""

    def __init__(self, crop: Optional[int] = None, flip: bool = True, color_noise: float = 0.0,
                 pca: Optional[ColorPCA] = None):
        if crop is not None:
            crop = operator.index(crop)
            if crop < 1:
                raise ValueError(f"crop must be >= 1 pixel, got {crop}")
        if not color_noise >= 0:
            raise ValueError(f"color_noise must be >= 0, got {color_noise}")
        if color_noise > 0 and pca is None:
            raise ValueError("color_noise > 0 needs the training set's colour PCA "
                             "(pca=ColorPCA.from_provider(provider))")
        self.crop, self.flip, self.color_noise, self.pca = crop, bool(flip), float(color_noise), pca

    def __repr__(self):
        return (f"Augmentation(crop={self.crop}, flip={self.flip}, "
                f"color_noise={self.color_noise}, pca={self.pca!r})")

    def output_shape(self, image_shape: Sequence[int]) -> Tuple[int, int, int]:
        """(C, crop, crop) for images of (C, H, W), or (C, H, W) itself without a crop."""
        c, h, w = (int(s) for s in image_shape)
        if self.crop is None:
            return c, h, w
        if self.crop > h or self.crop > w:
            raise ValueError(f"crop {self.crop}x{self.crop} is larger than the {h}x{w} (HxW) "
                             f"images")
        return c, self.crop, self.crop

    def _check(self, images, colour: bool) -> np.ndarray:
        images = _check_images(images)
        self.output_shape(images.shape[1:])
        if colour and images.shape[1] != self.pca.channels:
            raise ValueError(f"colour PCA of {self.pca.channels} channels for images of "
                             f"{images.shape[1]} channels")
        return images

    def train(self, images, key, out: Optional[np.ndarray] = None,
              part: Optional[Tuple[int, int]] = None) -> np.ndarray:
        """A new float32 (N, C, crop, crop) array: per image a crop at offsets drawn uniformly
        from [0, H-crop] x [0, W-crop], a horizontal reflection with probability 1/2 and one
        colour offset added to all its pixels. A pure function of (images, key); the input is
        not modified. out: a float32 (N, C, crop, crop) array to write into (a loader's reused
        buffer) instead of a new one. part=(first, total): the images are images first ..
        first + N of a batch of `total` (a data-parallel rank's shard), and get that batch's
        draws for them."""
        colour = self.color_noise > 0
        images = self._check(images, colour)
        n, c, h, w = images.shape
        first, total = part if part is not None else (0, n)
        if not 0 <= first <= first + n <= total:
            raise ValueError(f"augmentation: images {first}..{first + n} are not part of a "
                             f"batch of {total}")
        mine = slice(first, first + n)
        rng = _rng(key)
        # The draws always happen in this order, each for the whole batch.
        size = self.crop
        if size is not None:
            ys = rng.integers(0, h - size + 1, total)[mine]
            xs = rng.integers(0, w - size + 1, total)[mine]
        else:
            size, ys, xs = None, np.zeros(n, np.int64), np.zeros(n, np.int64)
        flips = rng.random(total)[mine] < 0.5 if self.flip else np.zeros(n, bool)
        # One strided copy per image, the reflection folded into it: several times faster than
        # a fancy-indexed gather over sliding windows (which also holds the GIL throughout).
        sh, sw = (size, size) if size is not None else (h, w)
        out = _output(out, (n, c, sh, sw))
        for i in range(n):
            patch = images[i, :, ys[i]:ys[i] + sh, xs[i]:xs[i] + sw]
            out[i] = patch[..., ::-1] if flips[i] else patch
        if colour:
            offsets = self.pca.noise(total, self.color_noise, rng)[mine].astype(np.float32)
            out += offsets[:, :, None, None]
        return out

    def test(self, images, out: Optional[np.ndarray] = None) -> np.ndarray:
        """The centre crop (offsets (H-crop)//2, (W-crop)//2), or the images unchanged (as
        float32, possibly the same array) without a crop; written into `out` when given."""
        images = self._check(images, False)
        if self.crop is None:
            patch = images
        else:
            h, w = images.shape[2:]
            y, x = (h - self.crop) // 2, (w - self.crop) // 2
            patch = images[:, :, y:y + self.crop, x:x + self.crop]
        if out is not None:
            np.copyto(_output(out, patch.shape), patch)
            return out
        if self.crop is None:
            return images.astype(np.float32, copy=False)
        return np.ascontiguousarray(patch, dtype=np.float32)

    def views(self, images) -> np.ndarray:
        """The paper's ten test views as a float32 (10, N, C, crop, crop) array, in this order:
        top-left, top-right, bottom-left, bottom-right and centre patches, then the same five
        reflected horizontally (view i+5 is view i mirrored). cuda-convnet v1 put the centre
        third; the order only matters to a caller that looks at single views, since the
        predictions of the ten are averaged."""
        if self.crop is None:
            raise ValueError("views need a crop size: the ten views are crop x crop patches at "
                             "the corners and the centre")
        images = self._check(images, False)
        n, c, h, w = images.shape
        s = self.crop
        offsets = [(0, 0), (0, w - s), (h - s, 0), (h - s, w - s), ((h - s) // 2, (w - s) // 2)]
        out = np.empty((10, n, c, s, s), np.float32)
        for i, (y, x) in enumerate(offsets):
            out[i] = images[:, :, y:y + s, x:x + s]
            out[i + 5] = out[i][..., ::-1]
        return out


class AugmentedDataset:
    """A provider with its augmentation: what the Trainer and the Loader consume.

    batch("train", ...) applies augmentation.train, any other split augmentation.test. The
    augmentation key of a training batch is (seed, 1) + key, where key says which batch this is
    (the trainer's (epoch, batch)); without a key it is (seed, 0, crc32 of the indices), so a
    caller that passes none still gets fresh, reproducible crops for every distinct batch
    instead of the same offsets in every batch."""

    def __init__(self, provider, augmentation: Augmentation, seed: int = 0):
        self.provider, self.augmentation, self.seed = provider, augmentation, operator.index(seed)
        # Fail now, not at the first batch, when the crop or the PCA does not fit the images.
        self.shape = augmentation.output_shape(provider.image_shape)
        if augmentation.color_noise > 0 and augmentation.pca.channels != provider.image_shape[0]:
            raise ValueError(f"colour PCA of {augmentation.pca.channels} channels for "
                             f"{provider.name!r} images of {provider.image_shape[0]} channels")

    @property
    def classes(self) -> int:
        return self.provider.classes

    @property
    def label_names(self):
        return self.provider.label_names

    def size(self, split: str) -> int:
        return self.provider.size(split)

    def _key(self, indices, key):
        if key is not None:
            return (self.seed, 1) + tuple(key)
        raw = np.ascontiguousarray(indices, np.int64).tobytes()
        return (self.seed, 0, zlib.crc32(raw))

    def batch(self, split: str, indices, key=None, out: Optional[np.ndarray] = None,
              part: Optional[Tuple[int, int]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """(float32 (N,) + shape images, int64 (N,) labels); thread-safe if the provider is.
        out: an array to write the images into (the loader's reused, possibly pinned, buffer).
        part=(first, total): indices are positions first .. of a training batch of `total` under
        `key`, which the augmentation draws for (a data-parallel rank's shard)."""
        if part is not None and key is None:
            raise ValueError("a part of a batch needs the batch's augmentation key")
        images, labels = self.provider.images(split, indices)
        if split == "train":
            images = self.augmentation.train(images, self._key(indices, key), out=out, part=part)
        else:
            images = self.augmentation.test(images, out=out)
        return images, np.asarray(labels, np.int64)

    def views(self, split: str, indices) -> Tuple[np.ndarray, np.ndarray]:
        """(float32 (10, N) + shape views, int64 (N,) labels): see Augmentation.views."""
        images, labels = self.provider.images(split, indices)
        return self.augmentation.views(images), np.asarray(labels, np.int64)

    def close(self) -> None:
        self.provider.close()
