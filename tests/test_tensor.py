"""Tensor, Device and the caching allocator, through the Python bindings."""

import numpy as np
import pytest

import convnet


def test_from_numpy_copies_and_numpy_views_share_storage():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    t = convnet.Tensor.from_numpy(a)
    a[0, 0] = -1  # from_numpy copied: the tensor does not see this
    view = t.numpy()
    assert view.shape == (3, 4) and view.dtype == np.float32 and view[0, 0] == 0
    view[1, 1] = 42  # numpy() is a view: the tensor sees this
    assert t.numpy()[1, 1] == 42
    assert t.shape == (3, 4) and t.dtype == "float32" and t.numel == 12
    assert str(t.device) == "cpu"


def test_reshape_shares_storage_and_keeps_it_alive():
    t = convnet.Tensor.from_numpy(np.arange(6, dtype=np.float64))
    r = t.reshape([2, 3])
    assert r.shares_storage_with(t) and r.dtype == "float64"
    del t
    np.testing.assert_array_equal(r.numpy(), np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match="reshape"):
        r.reshape([4, 2])


def test_numpy_view_outlives_tensor():
    view = convnet.Tensor.from_numpy(np.full(1000, 7, dtype=np.float32)).numpy()
    np.testing.assert_array_equal(view, 7)


def test_zeros_and_bad_arguments():
    z = convnet.Tensor.zeros([2, 5], dtype="float64")
    assert z.numpy().sum() == 0 and z.dtype == "float64"
    with pytest.raises(ValueError, match="dtype"):
        convnet.Tensor.zeros([2], dtype="int8")
    with pytest.raises(ValueError, match="negative"):
        convnet.Tensor.zeros([-1, 2])
    with pytest.raises(ValueError, match="float32 or float64"):
        convnet.Tensor.from_numpy(np.zeros(3, dtype=np.int32))
    with pytest.raises(ValueError, match="contiguous"):
        convnet.Tensor.from_numpy(np.zeros((4, 4), dtype=np.float32)[:, ::2])


def test_device_parsing():
    assert str(convnet.Device("cpu")) == "cpu"
    d = convnet.Device("cuda:3")
    assert d.type == "cuda" and d.index == 3 and str(d) == "cuda:3"
    assert convnet.Device("cuda") == convnet.Device("cuda:0")
    for bad in ("gpu", "cuda:", "cuda:x", "CPU"):
        with pytest.raises(ValueError, match="device"):
            convnet.Device(bad)


@pytest.mark.skipif(convnet.cuda_device_count() > 0, reason="checks the no-GPU behaviour")
def test_missing_gpu_is_a_clear_error():
    with pytest.raises(ValueError, match="cuda:0 is not available"):
        convnet.Tensor.from_numpy(np.zeros(3, dtype=np.float32), "cuda:0")


def test_caching_allocator_reuses_released_blocks():
    convnet.empty_cache()
    before = convnet.allocator_stats()
    shape = [257, 1031]  # an odd size: rounded up to the allocator's granularity
    for _ in range(5):
        t = convnet.Tensor.zeros(shape)
        del t
    after = convnet.allocator_stats()
    assert after["allocations"] - before["allocations"] == 5
    # The first allocation comes from the system, the next four from the cache.
    assert after["cache_hits"] - before["cache_hits"] >= 4
    assert after["bytes_cached"] >= 257 * 1031 * 4
    convnet.empty_cache()
    assert convnet.allocator_stats()["bytes_cached"] == 0


def test_threads_setting_round_trips():
    n = convnet.get_num_threads()
    try:
        convnet.set_num_threads(1)
        assert convnet.get_num_threads() == 1
    finally:
        convnet.set_num_threads(n)
    with pytest.raises(ValueError):
        convnet.set_num_threads(0)
