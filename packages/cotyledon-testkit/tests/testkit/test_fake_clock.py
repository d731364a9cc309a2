"""FakeClock: moves only when told, never backwards."""

from __future__ import annotations

import math

import pytest

from cotyledon_testkit import FakeClock


def test_fake_clock_starts_at_given_time() -> None:
    clock = FakeClock(5.0)

    assert clock.now() == 5.0


def test_fake_clock_advance_moves_forward() -> None:
    clock = FakeClock()

    clock.advance(1.5)

    assert clock.now() == 1.5


@pytest.mark.parametrize("seconds", [-0.1, math.inf, math.nan])
def test_fake_clock_rejects_bad_advance(seconds: float) -> None:
    clock = FakeClock()

    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(seconds)
    assert clock.now() == 0.0


def test_fake_clock_jumps_to_deadline() -> None:
    clock = FakeClock()

    clock.jump_to(7.25)

    assert clock.now() == 7.25


def test_fake_clock_ignores_past_deadline() -> None:
    clock = FakeClock(10.0)

    clock.jump_to(3.0)
    clock.jump_to(None)

    assert clock.now() == 10.0


def test_fake_clock_repr_shows_time() -> None:
    clock = FakeClock(2.5)

    assert repr(clock) == "<FakeClock now=2.500000>"


def test_fake_clock_fixture_starts_at_zero(fake_clock: FakeClock) -> None:
    assert fake_clock.now() == 0.0
