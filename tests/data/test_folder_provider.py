"""ImageFolder on folders of images of every common format and mode: decoding, the resize rule
against geometry, the mean-image cache (beside the data or elsewhere), and bad files named one
by one, skipped, or going bad later."""

import os
import warnings

import numpy as np
import pytest
from PIL import Image

from convnet.data import folder as folder_mod
from convnet.data.errors import DataError
from convnet.data.folder import ImageFolder, load_image
from sample_datasets import F32_TOL, all_images, check_provider, make_folder, save, solid


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


def test_no_warnings_on_clean_data(tmp_path, rng):
    make_folder(tmp_path, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ImageFolder(tmp_path, size=16)
