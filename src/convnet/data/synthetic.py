"""A built-in dataset for trying a net without downloading anything: deterministic, learnable and
of any image size. Class k's images are an oriented sine grating (angle k*pi/K) on a background
tinted with the class's colour, with a random phase, a random offset of the tint and pixel noise,
so that both colour and orientation carry the label. Values are on the scale of mean-subtracted
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

    def __len__(self):
        return self.sizes["train"]

    def size(self, split: str) -> int:
        return self.sizes[split]

    def label(self, split: str, index: int) -> int:
        return int(self._rng(split, index).integers(self.classes))

    def _rng(self, split, index):
        return np.random.default_rng([self.seed, 0 if split == "train" else 1, index])

    def image(self, split: str, index: int):
        rng = self._rng(split, index)
        k = int(rng.integers(self.classes))
        angle = np.pi * k / self.classes
        yy, xx = self._grid
        freq = 3.0 + 0.5 * rng.standard_normal()
        grating = np.sin(freq * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) +
                         rng.uniform(0, 2 * np.pi))
        tint = self._tints[k] + 0.3 * rng.standard_normal(self.shape[0])
        img = tint[:, None, None] + 0.8 * grating[None] + 0.5 * rng.standard_normal(self.shape)
        return (self.scale * img).astype(np.float32), k

    def batch(self, split: str, indices):
        images = np.empty((len(indices),) + self.shape, np.float32)
        labels = np.empty(len(indices), np.int64)
        for j, i in enumerate(indices):
            images[j], labels[j] = self.image(split, int(i))
        return images, labels
