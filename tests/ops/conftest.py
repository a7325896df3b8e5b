"""Fixtures of the op tests."""

import pytest

from convnet import _core
from gpu_helpers import PRECISIONS


@pytest.fixture(params=PRECISIONS)
def precision(request):
    """Runs the test under one math precision and restores the previous one."""
    previous = _core.get_math_precision()
    _core.set_math_precision(request.param)
    yield request.param
    _core.set_math_precision(previous)
