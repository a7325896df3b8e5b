"""The package imports on a machine without a GPU and reports what it has."""

import convnet
import convnet.ops


def test_import_and_version():
    assert convnet.__version__
    assert callable(convnet.ops.conv_forward)


def test_cuda_device_count_is_an_int():
    n = convnet.cuda_device_count()
    assert isinstance(n, int) and n >= 0


def test_error_is_an_exception():
    assert issubclass(convnet.Error, Exception)


def test_cuda_runtime_error_is_convnet_error_not_crash():
    # An op on a tensor that lives nowhere usable raises, not aborts.
    import numpy as np
    import pytest
    with pytest.raises((ValueError, convnet.Error)):
        convnet.Tensor.from_numpy(np.zeros(2, np.float32), "cuda:7")
