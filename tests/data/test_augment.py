"""Augmentation: crops lie inside the image at uniform offsets, flips happen half the time, PCA
colour noise has std^2 times the training colour covariance, the ten views are the corners and the
centre and their reflections, and everything is a pure function of the key. Statistical checks use
bounds of several standard deviations: a correct implementation fails one about once in 10^5 runs
(and the seeds are fixed), a wrong one fails every time."""

import numpy as np
import pytest

from convnet.data.augment import Augmentation, AugmentedDataset, ColorPCA
from convnet.data.provider import Provider

# Bounds on a statistic: mean +- Z_BOUND standard deviations (p ~ 6e-7 per check when correct).
Z_BOUND = 5.0


class ArrayProvider(Provider):
    """Random images and labels held in memory; records which indices were asked for."""

    name = "arrays"

    def __init__(self, shape=(3, 12, 14), train=40, test=10, classes=4, seed=0):
        rng = np.random.default_rng(seed)
        self.classes, self.label_names = classes, [f"c{k}" for k in range(classes)]
        self.image_shape = shape
        self.data = {s: (rng.normal(0, 30, (n,) + shape).astype(np.float32),
                         rng.integers(0, classes, n)) for s, n in (("train", train),
                                                                   ("test", test))}
        self._mean = rng.normal(100, 20, shape).astype(np.float32)
        self.requested = []

    def size(self, split):
        return len(self.data[split][1])

    def images(self, split, indices):
        indices = np.asarray(indices, np.int64)
        self.requested.append(indices.copy())
        x, y = self.data[split]
        return x[indices].copy(), y[indices].astype(np.int64)

    @property
    def mean(self):
        return self._mean


def coordinate_images(n, h, w):
    """(n, 3, h, w): channel 0 holds each pixel's row, channel 1 its column, channel 2 the image
    number, so a crop tells where it came from and whether it was reflected."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    images = np.empty((n, 3, h, w), np.float32)
    images[:, 0], images[:, 1] = rows, cols
    images[:, 2] = np.arange(n)[:, None, None]
    return images


def binomial_bounds(n, p):
    sd = np.sqrt(n * p * (1 - p))
    return n * p - Z_BOUND * sd, n * p + Z_BOUND * sd


def recover(out, images, crop):
    """Offsets and flips of each output crop, checked to be exactly that patch of its image."""
    ys, xs, flips = [], [], []
    for i, patch in enumerate(out):
        flipped = patch[1, 0, 0] > patch[1, 0, -1]
        y, x = int(patch[0, 0, 0]), int(patch[1, 0, -1 if flipped else 0])
        expected = images[i, :, y:y + crop, x:x + crop]
        np.testing.assert_array_equal(patch, expected[..., ::-1] if flipped else expected)
        ys.append(y), xs.append(x), flips.append(flipped)
    return np.array(ys), np.array(xs), np.array(flips)


def test_random_crops_lie_inside_and_cover_every_offset():
    n, h, w, crop = 2000, 9, 12, 6   # rectangular: 4 row offsets, 7 column offsets
    images = coordinate_images(n, h, w)
    out = Augmentation(crop=crop, flip=False).train(images, (3, 1, 4))
    assert out.shape == (n, 3, crop, crop) and out.dtype == np.float32
    ys, xs, flips = recover(out, images, crop)
    assert not flips.any()
    # Uniform over [0, H-crop] x [0, W-crop], both ends included.
    for offsets, count in ((ys, h - crop + 1), (xs, w - crop + 1)):
        assert offsets.min() >= 0 and offsets.max() <= count - 1
        lo, hi = binomial_bounds(n, 1 / count)
        hist = np.bincount(offsets, minlength=count)
        assert hist.size == count and np.all((hist > lo) & (hist < hi)), hist


def test_flips_happen_half_the_time_and_reflect_horizontally():
    n, h, w, crop = 2000, 8, 8, 5
    images = coordinate_images(n, h, w)
    out = Augmentation(crop=crop, flip=True).train(images, (0, 0, 7))
    ys, xs, flips = recover(out, images, crop)   # checks each flipped patch is patch[..., ::-1]
    lo, hi = binomial_bounds(n, 0.5)
    assert lo < flips.sum() < hi
    # Flips are independent of the crop offsets: flipped and in the left half of the 4 column
    # offsets is a quarter of the images.
    lo4, hi4 = binomial_bounds(n, 0.25)
    assert lo4 < (flips & (xs < 2)).sum() < hi4
    # Without a crop the whole image is reflected.
    full = Augmentation(flip=True).train(images, (5,))
    flipped = full[:, 1, 0, 0] > full[:, 1, 0, -1]
    np.testing.assert_array_equal(full[flipped], images[flipped][..., ::-1])
    np.testing.assert_array_equal(full[~flipped], images[~flipped])
    assert lo < flipped.sum() < hi


def test_no_flips_when_disabled():
    images = coordinate_images(50, 6, 6)
    np.testing.assert_array_equal(Augmentation(flip=False).train(images, (1,)), images)


def test_crop_larger_than_the_image_names_both_sizes():
    images = np.zeros((2, 3, 20, 30), np.float32)
    for crop in (21, 31):
        with pytest.raises(ValueError, match=rf"crop {crop}x{crop} .* 20x30"):
            Augmentation(crop=crop).train(images, (0,))
        with pytest.raises(ValueError, match="20x30"):
            Augmentation(crop=crop).test(images)
    with pytest.raises(ValueError, match=">= 1"):
        Augmentation(crop=0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        Augmentation(crop=4).train(images[0], (0,))


def test_centre_crop_and_no_crop():
    rng = np.random.default_rng(0)
    images = rng.standard_normal((3, 3, 9, 12)).astype(np.float32)
    np.testing.assert_array_equal(Augmentation(crop=5).test(images), images[:, :, 2:7, 3:8])
    np.testing.assert_array_equal(Augmentation(crop=9).test(images), images[:, :, :, 1:10])
    np.testing.assert_array_equal(Augmentation().test(images), images)


def test_ten_views_are_corners_centre_and_their_reflections():
    rng = np.random.default_rng(1)
    images = rng.standard_normal((4, 3, 11, 14)).astype(np.float32)
    s = 7
    views = Augmentation(crop=s).views(images)
    assert views.shape == (10, 4, 3, s, s) and views.dtype == np.float32
    expected = [images[:, :, :s, :s], images[:, :, :s, -s:], images[:, :, -s:, :s],
                images[:, :, -s:, -s:], images[:, :, 2:2 + s, 3:3 + s]]
    for i, patch in enumerate(expected):
        np.testing.assert_array_equal(views[i], patch)
        np.testing.assert_array_equal(views[i + 5], patch[..., ::-1])
    with pytest.raises(ValueError, match="crop size"):
        Augmentation().views(images)


def test_augmentation_is_a_pure_function_of_the_key():
    rng = np.random.default_rng(2)
    pca = ColorPCA.fit(rng.standard_normal((1000, 3)) * [30, 20, 10])
    aug = Augmentation(crop=10, flip=True, color_noise=0.1, pca=pca)
    images = rng.standard_normal((64, 3, 16, 16)).astype(np.float32)
    before = images.copy()
    a = aug.train(images, (7, 3, 11))
    np.testing.assert_array_equal(images, before)    # the input is not modified
    np.testing.assert_array_equal(a, aug.train(images.copy(), (7, 3, 11)))
    np.testing.assert_array_equal(a, aug.train(images, (np.int64(7), 3, 11)))
    for other in ((7, 3, 12), (7, 4, 11), (8, 3, 11), (7, 3), (7, 3, 11, 0)):
        assert not np.array_equal(a, aug.train(images, other)), other
    with pytest.raises(ValueError, match="non-negative"):
        aug.train(images, (-1, 0))
    with pytest.raises(TypeError, match="tuple of ints"):
        aug.train(images, (1.5, 0))


def test_colour_noise_is_one_offset_per_image_along_the_pca():
    rng = np.random.default_rng(3)
    cov = np.array([[400.0, 120, 60], [120, 300, 90], [60, 90, 200]])
    pca = ColorPCA.from_covariance(cov)
    images = rng.standard_normal((500, 3, 5, 7)).astype(np.float32)
    out = Augmentation(flip=False, color_noise=0.1, pca=pca).train(images, (9,))
    diff = (out - images).astype(np.float64)
    offsets = diff[:, :, 0, 0]
    # The same offset on every pixel of an image (up to float32 rounding of the sum).
    np.testing.assert_allclose(diff, np.broadcast_to(offsets[:, :, None, None], diff.shape),
                               atol=1e-5)
    # Offsets differ between images, and their covariance is 0.01 * cov within sampling error.
    assert len(np.unique(offsets[:, 0])) == len(offsets)
    target = 0.01 * cov
    sd = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target ** 2) / len(offsets))
    assert np.all(np.abs(offsets.T @ offsets / len(offsets) - target) < Z_BOUND * sd)


def test_colour_noise_needs_a_matching_pca():
    with pytest.raises(ValueError, match="colour PCA"):
        Augmentation(color_noise=0.1)
    pca = ColorPCA.from_covariance(np.eye(3))
    with pytest.raises(ValueError, match="3 channels for images of 1 channels"):
        Augmentation(color_noise=0.1, pca=pca).train(np.zeros((2, 1, 4, 4), np.float32), (0,))
    with pytest.raises(ValueError, match="color_noise must be >= 0"):
        Augmentation(color_noise=-0.1, pca=pca)


def known_covariance():
    a = np.array([[50.0, 0, 0], [30, 25, 0], [10, -20, 8]])
    return a @ a.T      # well-separated eigenvalues, so the eigenvectors are well determined


def test_fit_recovers_a_known_covariance_with_orthonormal_eigenvectors():
    cov = known_covariance()
    rng = np.random.default_rng(4)
    m = 200_000
    pixels = rng.multivariate_normal([120, 110, 100], cov, size=m).astype(np.float32)
    pca = ColorPCA.fit(pixels)
    p, values = pca.eigenvectors, pca.eigenvalues
    np.testing.assert_allclose(p.T @ p, np.eye(3), atol=1e-12)
    assert np.all(np.diff(values) <= 0) and values[-1] > 0
    np.testing.assert_allclose(p @ np.diag(values) @ p.T, pca.covariance, atol=1e-9)
    # A sample covariance entry has sd sqrt((C_ii C_jj + C_ij^2) / m).
    sd = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov ** 2) / m)
    assert np.all(np.abs(pca.covariance - cov) < Z_BOUND * sd), (pca.covariance, cov)
    # The eigenvalues are the variances along the eigenvectors.
    centred = pixels - pixels.mean(axis=0)
    np.testing.assert_allclose(((centred @ p) ** 2).sum(0) / (m - 1), values, rtol=1e-4)


def test_noise_covariance_is_std_squared_times_the_pixel_covariance_at_any_scale():
    cov = known_covariance()
    n, std = 200_000, 0.1
    for scale in (1.0, 1 / 255.0):      # 8-bit pixels and the same pixels in [0, 1]
        c = cov * scale ** 2
        pca = ColorPCA.from_covariance(c)
        noise = pca.noise(n, std, np.random.default_rng(5))
        assert noise.shape == (n, 3)
        target = std ** 2 * c
        sd = np.sqrt((np.outer(np.diag(target), np.diag(target)) + target ** 2) / n)
        empirical = noise.T @ noise / n          # the mean is 0 by construction
        assert np.all(np.abs(empirical - target) < Z_BOUND * sd), (scale, empirical, target)
        assert np.all(np.abs(noise.mean(0)) < Z_BOUND * np.sqrt(np.diag(target) / n))
    assert not ColorPCA.from_covariance(cov).noise(4, 0.0, np.random.default_rng(0)).any()


def test_pca_round_trips_through_plain_arrays_and_rejects_garbage(tmp_path):
    pca = ColorPCA.from_covariance(known_covariance())
    np.savez(tmp_path / "pca.npz", **pca.to_dict())
    with np.load(tmp_path / "pca.npz") as f:
        back = ColorPCA.from_dict(dict(f))
    np.testing.assert_array_equal(back.eigenvalues, pca.eigenvalues)
    np.testing.assert_array_equal(back.eigenvectors, pca.eigenvectors)
    with pytest.raises(ValueError, match="missing"):
        ColorPCA.from_dict({"eigenvalues": pca.eigenvalues})
    with pytest.raises(ValueError, match="orthonormal"):
        ColorPCA(pca.eigenvalues, 2 * pca.eigenvectors)
    with pytest.raises(ValueError, match="negative"):
        ColorPCA(-pca.eigenvalues, pca.eigenvectors)
    with pytest.raises(ValueError, match=r"\(C, C\)"):
        ColorPCA(pca.eigenvalues, pca.eigenvectors[:2])
    with pytest.raises(ValueError, match=r"\(M, C\)"):
        ColorPCA.fit(np.zeros((1, 3)))


def test_pca_from_provider_reads_a_bounded_deterministic_sample_of_raw_pixels():
    provider = ArrayProvider(shape=(3, 6, 5), train=40)
    pca = ColorPCA.from_provider(provider, samples=15, chunk=4)
    read = np.concatenate(provider.requested)
    assert len(read) == 15 and len(np.unique(read)) == 15
    assert max(len(r) for r in provider.requested) <= 4
    # Equal to fitting the same images' raw (mean added back) pixels in one go.
    raw = provider.data["train"][0][read].astype(np.float64) + provider.mean
    direct = ColorPCA.fit(np.moveaxis(raw, 1, -1).reshape(-1, 3))
    np.testing.assert_allclose(pca.covariance, direct.covariance, rtol=1e-10)
    provider.requested.clear()
    again = ColorPCA.from_provider(provider, samples=15, chunk=4)
    np.testing.assert_array_equal(np.concatenate(provider.requested), read)
    np.testing.assert_array_equal(again.eigenvalues, pca.eigenvalues)
    # More samples than images: every image once.
    provider.requested.clear()
    ColorPCA.from_provider(provider, samples=1000)
    np.testing.assert_array_equal(np.sort(np.concatenate(provider.requested)), np.arange(40))


def test_augmented_dataset_trains_on_random_crops_and_tests_on_the_centre():
    provider = ArrayProvider(shape=(3, 12, 14))
    pca = ColorPCA.from_provider(provider)
    aug = Augmentation(crop=10, color_noise=0.1, pca=pca)
    data = AugmentedDataset(provider, aug, seed=5)
    assert data.shape == (3, 10, 10) and data.classes == 4 and data.size("train") == 40
    idx = np.array([3, 1, 4, 1, 5])
    x, y = data.batch("train", idx, key=(2, 6))
    raw, labels = provider.images("train", idx)
    np.testing.assert_array_equal(x, aug.train(raw, (5, 1, 2, 6)))
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64 and x.dtype == np.float32
    assert not np.array_equal(x, data.batch("train", idx, key=(2, 7))[0])
    assert not np.array_equal(x, AugmentedDataset(provider, aug, seed=6).batch(
        "train", idx, key=(2, 6))[0])
    # Without a key: reproducible, and different for different batches.
    a = data.batch("train", idx)[0]
    np.testing.assert_array_equal(a, data.batch("train", idx)[0])
    assert not np.array_equal(a[1:], data.batch("train", idx[1:])[0])
    xt, yt = data.batch("test", [0, 2])
    np.testing.assert_array_equal(xt, provider.data["test"][0][[0, 2]][:, :, 1:11, 2:12])
    views, yv = data.views("test", [0, 2])
    assert views.shape == (10, 2, 3, 10, 10)
    np.testing.assert_array_equal(views[4], xt)
    np.testing.assert_array_equal(yv, yt)


def test_augmented_dataset_checks_shapes_up_front():
    provider = ArrayProvider(shape=(3, 12, 14))
    with pytest.raises(ValueError, match="crop 13x13 .* 12x14"):
        AugmentedDataset(provider, Augmentation(crop=13))
    gray = ArrayProvider(shape=(1, 12, 14))
    with pytest.raises(ValueError, match="3 channels"):
        AugmentedDataset(gray, Augmentation(color_noise=0.1,
                                            pca=ColorPCA.from_covariance(np.eye(3))))
    assert AugmentedDataset(gray, Augmentation()).shape == (1, 12, 14)
