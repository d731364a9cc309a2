"""The runtime's real clock and its random numbers."""

from __future__ import annotations

import time

from cotyledon.runtime import MonotonicClock
from cotyledon.runtime import random_fraction


def test_random_fraction_in_unit_interval() -> None:
    draws = [random_fraction() for _ in range(2000)]

    assert all(0.0 <= draw < 1.0 for draw in draws)
    # 2000 uniform draws: each tenth of the interval gets some.
    assert {int(draw * 10) for draw in draws} == set(range(10))


def test_clock_is_offset_from_monotonic() -> None:
    clock = MonotonicClock()
    before = time.monotonic()
    now = clock.now()
    after = time.monotonic()

    assert before + 1_000.0 <= now <= after + 1_000_000.0


def test_clock_keeps_its_offset() -> None:
    clock = MonotonicClock()
    first = clock.now() - time.monotonic()
    sum(range(100_000))
    second = clock.now() - time.monotonic()

    assert abs(second - first) < 0.001
