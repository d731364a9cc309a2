"""The restart and stop policy of mailsorter, simulated: no process, no sleep.

The simulator reads the Sorter class as ServiceManager does (its name, its
10 s graceful shutdown timeout, its default reload), and the manager's
settings and the sorters' restart limit come from ``mailsorter.app``.
"""

from __future__ import annotations

import signal

import pytest
from mailsorter.app import SHUTDOWN_TIMEOUT
from mailsorter.app import SORTER_MAX_RESTARTS
from mailsorter.app import SORTER_WORKERS
from mailsorter.services import Sorter

from cotyledon import ServiceState
from cotyledon.core import GIVE_UP_EXIT_STATUS
from cotyledon_testkit import ServiceEnded
from cotyledon_testkit import Simulator
from cotyledon_testkit import WorkerBehaviour
from cotyledon_testkit import WorkerEnded
from cotyledon_testkit import WorkerKilled

HOUR = 3600.0


def _mailsorter(behaviour: WorkerBehaviour | None = None) -> Simulator:
    """Return a started simulation of mailsorter's manager, without jitter."""
    sim = Simulator(graceful_shutdown_timeout=SHUTDOWN_TIMEOUT, random=lambda: 0.5)
    sim.add(Sorter, SORTER_WORKERS, behaviour=behaviour, max_restarts=SORTER_MAX_RESTARTS)
    return sim.start()


def test_crashing_sorter_backs_off_alone() -> None:
    sim = _mailsorter()

    for _ in range(4):
        sim.exit("sorter", 0, code=1)
        sim.run_until_idle()
    sim.exit("sorter", 1, code=1)

    delays = [(r.worker_id, r.respawn_delay) for r in sim.records(WorkerEnded)]
    assert delays == [(0, 0.0), (0, 0.1), (0, 0.2), (0, 0.4), (1, 0.0)]
    assert sim.restarts("sorter") == 5


def test_sorter_crash_loop_gives_up() -> None:
    sim = _mailsorter(WorkerBehaviour(crash_after=0.0))

    sim.run_until_idle()

    restarts = [r for r in sim.records(WorkerEnded) if r.respawn_delay is not None]
    given_up = sim.records(ServiceEnded)
    assert len(restarts) == SORTER_MAX_RESTARTS[0]
    assert [(r.service, r.state) for r in given_up] == [("sorter", ServiceState.GIVEN_UP)]
    # Each sorter crashes as it starts, at 0, 0, 0.1, 0.3, 0.7 and 1.5 s as
    # the backoff doubles. The eleventh crash, at 1.5 s, is one too many.
    assert given_up[0].time == pytest.approx(1.5)
    assert sim.exit_status == GIVE_UP_EXIT_STATUS


def test_sorter_crashing_rarely_never_given_up() -> None:
    sim = _mailsorter(WorkerBehaviour(crash_after=600.0))

    sim.advance(HOUR)

    assert sim.restarts("sorter") == 2 * 6
    assert sim.records(ServiceEnded) == []


def test_stuck_sorter_killed_after_own_timeout() -> None:
    sim = _mailsorter(WorkerBehaviour(stop_after=None))

    sim.send_signal(signal.SIGTERM)
    sim.run_until_idle()

    assert [(r.worker_id, r.waited) for r in sim.records(WorkerKilled)] == [(0, 10.0), (1, 10.0)]
    assert sim.exit_status == 0


def test_reload_restarts_every_sorter() -> None:
    sim = _mailsorter()
    before = {key: process.pid for key, process in sim.processes().items()}

    sim.send_signal(signal.SIGHUP)

    after = {key: process.pid for key, process in sim.processes().items()}
    assert after.keys() == before.keys()
    assert set(after.values()).isdisjoint(before.values())
