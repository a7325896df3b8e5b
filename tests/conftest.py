"""Shared pytest setup: the gpu marker skips itself where no GPU is present; every test gets a
seeded numpy generator so failures reproduce."""

import numpy as np
import pytest

import convnet


def pytest_collection_modifyitems(config, items):
    if convnet.cuda_device_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (convnet.cuda_device_count() == 0)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def rng(request):
    # A different but fixed stream per test, from the test's name.
    seed = sum(map(ord, request.node.nodeid)) * 7919 % 2**32
    return np.random.default_rng(seed)
