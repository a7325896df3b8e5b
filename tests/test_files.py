"""convnet.files.atomic_write: a reader sees the old file or the new one, never a mix, and a
failed write leaves nothing behind."""

import os

import pytest

from convnet.files import atomic_write


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
