"""convnet.files.atomic_write and atomic_overwrite: a reader sees the old file or the new one, never
a mix, and a failed write leaves the old file as it was."""

import os

import pytest

from convnet.files import atomic_overwrite, atomic_write, remove_spare, spare_paths


@pytest.mark.parametrize("durable", [True, False])
def test_replaces_the_file_in_one_step(tmp_path, durable):
    path = tmp_path / "state.bin"
    path.write_bytes(b"old")
    with atomic_write(path, durable=durable) as f:
        f.write(b"new contents")
        assert path.read_bytes() == b"old"   # not visible until the block ends
    assert path.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["state.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "state.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_write(path) as f:
            f.write(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["state.bin"]


def test_creates_a_new_file(tmp_path):
    with atomic_write(str(tmp_path / "fresh.bin")) as f:
        f.write(b"x")
    assert (tmp_path / "fresh.bin").read_bytes() == b"x"


def test_overwrite_writes_each_save_into_the_file_the_one_before_last_wrote(tmp_path):
    path = tmp_path / "ckpt.npz"
    spare, _ = spare_paths(path)
    contents = [b"first, the longest of them all", b"second", b"third save", b"4"]
    inodes = []
    for data in contents:
        with atomic_overwrite(path) as f:
            f.write(data)
            assert not path.exists() or path.read_bytes() != data  # not visible until the end
        assert path.read_bytes() == data  # a shorter save leaves no tail of a longer one
        inodes.append(os.stat(path).st_ino)
    # The first save had nothing to keep; from the second on the replaced file is the spare,
    # so the saves alternate between two files.
    assert inodes[3] == inodes[1] and inodes[2] != inodes[1]
    assert os.path.exists(spare) and os.stat(spare).st_ino == inodes[2]
    remove_spare(path)
    assert sorted(os.listdir(tmp_path)) == ["ckpt.npz"]


def test_a_failed_overwrite_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.npz"
    for data in (b"one", b"two"):
        with atomic_overwrite(path) as f:
            f.write(data)
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_overwrite(path) as f:
            f.write(b"half of thr")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"two"
    with atomic_overwrite(path) as f:   # the spare it wrote into is simply reused
        f.write(b"three")
    assert path.read_bytes() == b"three"


def test_overwrite_cleans_up_after_a_save_stopped_between_its_renames(tmp_path):
    path = tmp_path / "ckpt.npz"
    spare, old = spare_paths(path)
    path.write_bytes(b"live")
    open(old, "wb").write(b"left by a killed save")
    with atomic_overwrite(path) as f:
        f.write(b"new")
    assert path.read_bytes() == b"new"
    assert open(spare, "rb").read() == b"live" and not os.path.exists(old)
