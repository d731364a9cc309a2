"""The pytest plugin of cotyledon-testkit, registered as ``cotyledon``."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest

from cotyledon_testkit._clock import FakeClock
from cotyledon_testkit._harness import ManagerProcess


@pytest.fixture
def fake_clock() -> FakeClock:
    """A ``FakeClock`` at time 0 that moves only when the test says so.

    Pass ``fake_clock.now()`` to ``Supervisor.handle`` and move it with
    ``advance(seconds)`` or ``jump_to(step.deadline)``.
    """
    return FakeClock()


@pytest.fixture
def manager_process() -> Iterator[Callable[..., ManagerProcess]]:
    """A factory that starts a real manager in a fresh interpreter.

    Call it with an import string, ``"package.module:build_and_run"``, and
    the keyword arguments of ``ManagerProcess``; it returns the started
    harness. Every process of every manager it started is killed at the end
    of the test, passed or failed.
    """
    started: list[ManagerProcess] = []

    def start(target: str, **kwargs: Any) -> ManagerProcess:
        harness = ManagerProcess(target, **kwargs)
        started.append(harness)
        return harness.start()

    try:
        yield start
    finally:
        for harness in started:
            harness.close()
