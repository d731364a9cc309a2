"""Fixtures shared by the tests of the pure core."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable

import pytest

from cotyledon.core import ServiceId
from cotyledon.core import ServiceSpec


@pytest.fixture
def seeded_random() -> Callable[[], float]:
    """A jitter source that gives the same numbers in every run."""
    return random.Random(0).random


@pytest.fixture
def web_spec() -> ServiceSpec:
    """A service of 2 workers with a 30 s graceful shutdown timeout.

    Its id sorts after the id of ``batch_spec`` although it is added first,
    so a test can tell the order of addition from the order of the ids.
    """
    return ServiceSpec(ServiceId(uuid.UUID(int=2)), "web", 2, 30.0)


@pytest.fixture
def batch_spec() -> ServiceSpec:
    """A service of 1 worker with a 5 s graceful shutdown timeout."""
    return ServiceSpec(ServiceId(uuid.UUID(int=1)), "batch", 1, 5.0)
