"""Shared pytest setup: the gpu marker skips itself where no GPU is present, the slow marker
(deselected by default in pyproject.toml; run with -m slow), and fixed seeds so failures
reproduce."""

import os
import zlib

import numpy as np
import pytest

import convnet

# Shared checks outside the test files: pytest rewrites their asserts too, to explain failures.
pytest.register_assert_rewrite("sample_datasets")


def pytest_configure(config):
    # Also declared in pyproject.toml; repeated here so the suite runs from any directory.
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU (skipped where none is present)")
    config.addinivalue_line("markers", "slow: takes more than a few seconds; run with -m slow")


def pytest_collection_modifyitems(config, items):
    if convnet.cuda_device_count() > 0 or os.environ.get("CONVNET_GPU_TESTS_DEVICE") == "cpu":
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (convnet.cuda_device_count() == 0)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True, scope="session")
def _runs_in_a_temporary_folder(tmp_path_factory):
    # convnet-train saves every run, by default in ./runs: tests that do not say where write to
    # a temporary folder instead of the working directory.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVNET_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        yield


@pytest.fixture(autouse=True)
def _fixed_global_seed():
    # Anything drawing from numpy's legacy global generator gets the same stream every run.
    np.random.seed(1234)


@pytest.fixture
def rng(request):
    """A generator with a fixed seed per test (from the test's id), so a failure reproduces on
    its own, independent of which other tests ran."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
