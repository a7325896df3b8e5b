"""A built-in dataset for trying a net without downloading anything: deterministic, learnable and
of any image size. Class k's images are an oriented sine grating (angle k*pi/K) on a background
tinted with the class's colour, with a random phase, a random offset of the tint and pixel noise,
so that both colour and orientation carry the label. The noise of an image is a window, at a
random offset, into one bank of normal deviates drawn once from the seed: drawing fresh deviates
for every pixel cost more than the small nets' training step. Values are on the scale of mean-subtracted
8-bit RGB (a standard deviation of about 50), the input the paper's nets and initialisations were
made for (AlexNet's N(0, 0.01^2) weights pass almost no signal from inputs of scale 1). Image i of
a split is a pure function of
(seed, split, i): nothing is stored, any batch can be regenerated, and a resumed run sees exactly
the images an uninterrupted one would."""

import numpy as np


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
        return int(self._rng(split, index).integers(self.classes))

    def _rng(self, split, index):
        return np.random.default_rng([self.seed, 0 if split == "train" else 1, index])

    def image(self, split: str, index: int):
        images, labels = self.batch(split, [index])
        return images[0], int(labels[0])

    def batch(self, split: str, indices):
        """Images (float32, N x C x H x W) and labels. Each image's random numbers come from its
        own generator (a pure function of seed, split and index); the arithmetic runs on the
        whole batch at once in float32: the loader makes batches on the cores that train, so
        their cost is the trainer's."""
        f32 = np.float32
        n, (c, h, w) = len(indices), self.shape
        images = np.empty((n, c, h, w), f32)
        labels = np.empty(n, np.int64)
        freq, phase = np.empty(n, f32), np.empty(n, f32)
        tint = np.empty((n, c), f32)
        for j, i in enumerate(indices):
            rng = self._rng(split, int(i))
            labels[j] = rng.integers(self.classes)
            freq[j] = (3.0 + 0.5 * rng.standard_normal()) * np.pi
            phase[j] = rng.uniform(0, 2 * np.pi)
            tint[j] = rng.standard_normal(c, dtype=f32)
            start = int(rng.integers(self._bank.size - c * h * w + 1))
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
