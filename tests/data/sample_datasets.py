"""Small datasets written here for the provider tests, in each format the providers read
(cuda-convnet batches, MNIST IDX files, image folders of every common format and mode), and the
checks that every provider must pass."""

import gzip
import pickle

import numpy as np
import pytest
from PIL import Image

from convnet.data.errors import DataError
from convnet.data.provider import Provider

# Mean subtraction is done in float32 on 0..255 values: exact to a few ulps of 255.
F32_TOL = 1e-4


def all_images(p, split):
    return p.images(split, np.arange(p.size(split)))


def check_provider(p, shape, classes):
    assert isinstance(p, Provider)
    assert p.image_shape == shape and p.classes == classes and len(p.label_names) == classes
    assert p.mean.shape == shape and p.mean.dtype == np.float32
    for split in ("train", "test"):
        x, y = all_images(p, split)
        assert x.dtype == np.float32 and x.shape == (p.size(split),) + shape
        assert y.dtype == np.int64 and y.min() >= 0 and y.max() < classes
    # the mean image of the training split is what is subtracted: the train images average to 0
    x, _ = all_images(p, "train")
    np.testing.assert_allclose(x.mean(axis=0, dtype=np.float64), 0, atol=1e-3)
    with pytest.raises(DataError, match="out of range"):
        p.images("train", [p.size("train")])
    with pytest.raises(DataError, match="out of range"):
        p.images("test", [-1])


def write_batches(root, rng, batches=3, n=5, s=4, classes=3, layout="col", bytes_keys=False,
                  mean=True, meta_extra=None, protocol=2):
    """Batches with known raw data; returns {batch number: (uint8 (n, 3, s, s), labels)}."""
    root.mkdir(parents=True, exist_ok=True)
    key = (lambda k: k.encode()) if bytes_keys else (lambda k: k)
    raw = {}
    for b in range(1, batches + 1):
        x = rng.integers(0, 256, (n, 3, s, s), dtype=np.uint8)
        y = rng.integers(0, classes, n).tolist()
        raw[b] = (x, y)
        flat = x.reshape(n, -1)
        data = flat.T.copy() if layout == "col" else flat
        with open(root / f"data_batch_{b}", "wb") as f:
            pickle.dump({key("data"): data, key("labels"): y}, f, protocol=protocol)
    meta = {key("label_names"): [f"c{i}".encode() if bytes_keys else f"c{i}"
                                 for i in range(classes)],
            key("num_vis"): 3 * s * s}
    if mean:
        allx = np.concatenate([raw[b][0] for b in range(1, max(batches, 2))])
        meta[key("data_mean")] = allx.reshape(len(allx), -1).mean(0).reshape(-1, 1)
    meta.update(meta_extra or {})
    with open(root / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=protocol)
    return raw


def idx_bytes(arr, code=0x08):
    return bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, ">u4").tobytes() + arr.tobytes()


def write_idx(root, rng, n=(12, 6), hw=(6, 6), gz=False, dot=False, classes=4):
    root.mkdir(parents=True, exist_ok=True)
    data = {}
    for split, stem, count in (("train", "train", n[0]), ("test", "t10k", n[1])):
        x = rng.integers(0, 256, (count,) + hw, dtype=np.uint8)
        y = (np.arange(count) % classes).astype(np.uint8)
        data[split] = (x, y)
        sep = "." if dot else "-"
        for kind, arr in (("images-idx3-ubyte", x), ("labels-idx1-ubyte", y)):
            name = f"{stem}-{kind}".replace("-idx", f"{sep}idx")
            blob = idx_bytes(arr)
            if gz:
                (root / (name + ".gz")).write_bytes(gzip.compress(blob))
            else:
                (root / name).write_bytes(blob)
    return data


def save(path, img, fmt=None, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, fmt, **kw)


def solid(size, colour, mode="RGB"):
    return Image.new(mode, size, colour)


def make_folder(root, rng):
    """3 classes, every format and mode, non-square images; returns {relpath: image as written}."""
    def noise(w, h):
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))

    save(root / "train/bird/a.jpg", noise(20, 14), quality=95)
    save(root / "train/bird/b.png", noise(14, 23))
    save(root / "train/bird/grey.jpg", noise(18, 18).convert("L"))
    save(root / "train/cat/cmyk.jpg", solid((24, 16), (0, 255, 255, 0), "CMYK"), quality=95)
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, 8:, 3] = 255       # right half opaque grey, left half transparent (colour 200 hidden)
    save(root / "train/cat/alpha.png", Image.fromarray(rgba, "RGBA"))
    save(root / "train/cat/pal.gif", noise(17, 19).convert("P"))
    save(root / "train/dog/x.bmp", noise(30, 16))
    save(root / "train/dog/y.webp", noise(16, 30), lossless=True)
    save(root / "train/dog/z.tiff", noise(21, 17))
    save(root / "train/dog/.hidden.jpg", noise(16, 16))   # ignored
    save(root / "val/cat/v1.png", noise(16, 20))
    save(root / "val/dog/v2.jpg", noise(25, 16))
