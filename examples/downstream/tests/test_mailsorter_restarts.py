"""The restart and stop policy of mailsorter, simulated: no process, no sleep.

The simulator reads the Sorter class as ServiceManager does (its name, its
10 s graceful shutdown timeout, its default reload), and the manager's
settings come from ``mailsorter.app``.
"""

from __future__ import annotations

import signal

import pytest
from mailsorter.app import SHUTDOWN_TIMEOUT
from mailsorter.app import SORTER_WORKERS
from mailsorter.services import Sorter

from cotyledon_testkit import Simulator
from cotyledon_testkit import WorkerBehaviour
from cotyledon_testkit import WorkerEnded
from cotyledon_testkit import WorkerKilled
from cotyledon_testkit import WorkerStarted


def _mailsorter(behaviour: WorkerBehaviour | None = None) -> Simulator:
    """Return a started simulation of mailsorter's manager, without jitter."""
    sim = Simulator(graceful_shutdown_timeout=SHUTDOWN_TIMEOUT, random=lambda: 0.5)
    sim.add(Sorter, SORTER_WORKERS, behaviour=behaviour)
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


def test_sorter_crash_loop_restarts_twice_a_minute() -> None:
    sim = _mailsorter(WorkerBehaviour(crash_after=0.0))

    sim.advance(3600.0)

    starts = [r.time for r in sim.records(WorkerStarted) if r.time >= 600.0]
    assert len(starts) == pytest.approx(2 * 2 * 50, abs=4)


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
