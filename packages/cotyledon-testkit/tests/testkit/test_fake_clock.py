"""FakeClock: moves only when told, never backwards."""

from __future__ import annotations

import math
import uuid

import pytest

from cotyledon.core import ReloadPolicy
from cotyledon.core import ServiceId
from cotyledon.core import SpawnWorker
from cotyledon.core import Start
from cotyledon.core import Supervisor
from cotyledon.core import TimerFired
from cotyledon.core import WorkerExited
from cotyledon.core import WorkerSpawned
from cotyledon.specs import service_spec
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


def test_supervisor_by_hand_backs_off(fake_clock: FakeClock) -> None:
    # The example of the README: the core alone, on the fake clock.
    spec = service_spec(
        ServiceId(uuid.uuid4()), "web", 1, 10.0, default_reload=ReloadPolicy.IN_PLACE
    )
    supervisor = Supervisor([spec], random=lambda: 0.5)  # 0.5: no jitter
    (spawn,) = supervisor.handle(Start(), fake_clock.now()).commands
    assert isinstance(spawn, SpawnWorker)
    supervisor.handle(WorkerSpawned(spawn.slot, 100), fake_clock.now())

    first = supervisor.handle(WorkerExited(100, 1), fake_clock.now())
    supervisor.handle(WorkerSpawned(spawn.slot, 101), fake_clock.now())
    second = supervisor.handle(WorkerExited(101, 1), fake_clock.now())
    fake_clock.jump_to(second.deadline)
    third = supervisor.handle(TimerFired(), fake_clock.now())

    assert SpawnWorker(spawn.slot) in first.commands  # the first restart is at once
    assert SpawnWorker(spawn.slot) not in second.commands
    assert second.deadline == 0.1
    assert third.commands == (SpawnWorker(spawn.slot),)
