"""The package imports on a machine without a GPU, reports what it has, and raises its own
errors as exceptions."""

import glob
import os
import subprocess
import sys

import numpy as np
import pytest

import convnet
import convnet.ops


def test_import_and_version():
    assert isinstance(convnet.__version__, str) and convnet.__version__
    for name in ("conv_forward", "conv_backward", "fc_forward", "neuron_forward", "lrn_forward",
                 "cmrnorm_forward", "pool_forward", "dropout_mask", "softmax_logloss",
                 "sgd_update"):
        assert callable(getattr(convnet.ops, name)), name


def test_cuda_device_count_is_an_int():
    n = convnet.cuda_device_count()
    assert isinstance(n, int) and n >= 0


@pytest.mark.skipif(bool(glob.glob("/dev/nvidia[0-9]*")), reason="this machine has a GPU")
def test_no_gpu_here_means_zero_devices():
    # No NVIDIA device node, so no usable GPU: the count is 0, not an error.
    assert convnet.cuda_device_count() == 0


def test_hidden_gpus_count_as_zero():
    # With every device hidden (or no driver at all) the count is 0 and the import still works.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    out = subprocess.run([sys.executable, "-c",
                          "import convnet, convnet.ops; print(convnet.cuda_device_count())"],
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "0"


def test_error_is_an_exception():
    assert issubclass(convnet.Error, Exception)


def test_device_errors_raise_instead_of_aborting():
    # A tensor on a device that is not there raises (ValueError or convnet.Error), not aborts.
    with pytest.raises((ValueError, convnet.Error)):
        convnet.Tensor.from_numpy(np.zeros(2, np.float32), "cuda:7")


def test_references_never_import_the_library():
    # tests/reference/ is an independent oracle: it must not borrow anything from convnet.
    import ast
    import pathlib
    for path in sorted((pathlib.Path(__file__).parent / "reference").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(n.split(".")[0] == "convnet" for n in names), (
                f"{path.name} imports {names}")
