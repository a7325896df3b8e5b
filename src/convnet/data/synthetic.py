"""A built-in dataset for trying a net without downloading anything: deterministic, learnable and
of any image size. Class k's images are an oriented sine grating (angle k*pi/K) on a background
tinted with the class's colour, with a random phase, a random offset of the tint and pixel noise,
so that both colour and orientation carry the label. The random numbers of image i are a hash of
(seed, split, i, draw). The noise of an image is a window, at a
random offset, into one bank of normal deviates drawn once from the seed: drawing fresh deviates
for every pixel cost more than the small nets' training step. Values are on the scale of mean-subtracted
8-bit RGB (a standard deviation of about 50), the input the paper's nets and initialisations were
made for (AlexNet's N(0, 0.01^2) weights pass almost no signal from inputs of scale 1). Image i of
a split is a pure function of
(seed, split, i): nothing is stored, any batch can be regenerated, and a resumed run sees exactly
the images an uninterrupted one would."""

import numpy as np

_GOLDEN = 0x9E3779B97F4A7C15


def _mix(z):
    """SplitMix64's finaliser on an array of uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _normal(a, b):
    """Standard normal deviates from two arrays of uniforms in [0, 1) (Box-Muller)."""
    return np.sqrt(-2.0 * np.log1p(-a)) * np.cos(2 * np.pi * b)


class SyntheticDataset:
    def __init__(self, shape=(3, 32, 32), classes: int = 10, train_size: int = 2560,
                 test_size: int = 512, seed: int = 0, scale: float = 50.0):
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"synthetic data: shape must be (C, H, W), got {shape}")
        if classes < 2:
            raise ValueError(f"synthetic data: needs at least 2 classes, got {classes}")
        self.shape, self.classes, self.seed = tuple(int(s) for s in shape), int(classes), int(seed)
        self.scale = float(scale)
        self.sizes = {"train": int(train_size), "test": int(test_size)}
        palette = np.random.default_rng([seed, 7919]).uniform(-1, 1, (classes, self.shape[0]))
        self._tints = palette.astype(np.float32)
        c, h, w = self.shape
        yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
        self._grid = (yy.astype(np.float32), xx.astype(np.float32))
        self._bank = np.random.default_rng([seed, 104729]).standard_normal(
            max(1 << 18, 4 * c * h * w), dtype=np.float32)

    def __len__(self):
        return self.sizes["train"]

    def size(self, split: str) -> int:
        return self.sizes[split]

    def label(self, split: str, index: int) -> int:
        return int(self._labels(self._uniforms(split, [index]))[0])

    # Per image: the label, two uniforms for the grating's frequency (one normal deviate, by
    # Box-Muller), the phase, two per channel for the tint's offset, and the noise's offset.
    def _draws(self) -> int:
        return 5 + 2 * self.shape[0]

    def _uniforms(self, split, indices):
        """Uniforms in [0, 1), one row of _draws() per index: SplitMix64 of (seed, split, index,
        column), so that each image is a pure function of those and a batch is made in a few
        array operations."""
        width = np.uint64(self._draws())
        base = _mix(np.array([self.seed * 2 + (0 if split == "train" else 1)], np.uint64))
        rows = np.asarray(indices, np.uint64)[:, None] * width
        keys = _mix((rows + np.arange(width, dtype=np.uint64) + base) * np.uint64(_GOLDEN))
        return (keys >> np.uint64(11)).astype(np.float64) * 2.0 ** -53

    def _labels(self, u):
        return np.minimum((u[:, 0] * self.classes).astype(np.int64), self.classes - 1)

    def image(self, split: str, index: int):
        images, labels = self.batch(split, [index])
        return images[0], int(labels[0])

    def batch(self, split: str, indices):
        """Images (float32, N x C x H x W) and labels, computed for the whole batch at once in
        float32: the loader makes batches on the cores that train, so their cost is the
        trainer's."""
        f32 = np.float32
        n, (c, h, w) = len(indices), self.shape
        u = self._uniforms(split, indices)
        labels = self._labels(u)
        freq = ((3.0 + 0.5 * _normal(u[:, 1], u[:, 2])) * np.pi).astype(f32)
        phase = (2 * np.pi * u[:, 3]).astype(f32)
        tint = _normal(u[:, 4:4 + c], u[:, 4 + c:4 + 2 * c]).astype(f32)
        starts = (u[:, 4 + 2 * c] * (self._bank.size - c * h * w + 1)).astype(np.int64)
        images = np.empty((n, c, h, w), f32)
        for j, start in enumerate(starts):
            images[j] = self._bank[start:start + c * h * w].reshape(c, h, w)
        angle = (np.pi / self.classes) * labels
        yy, xx = self._grid
        grating = np.sin(freq[:, None, None] * (np.cos(angle).astype(f32)[:, None, None] * xx +
                                                np.sin(angle).astype(f32)[:, None, None] * yy) +
                         phase[:, None, None])
        tint = self._tints[labels] + f32(0.3) * tint
        images *= f32(0.5)
        images += tint[:, :, None, None]
        images += f32(0.8) * grating[:, None]
        images *= f32(self.scale)
        return images, labels
