"""Supervision policies over long spans of fake time, with the testkit's Simulator.

Each test runs the pure supervisor against fake processes: an hour of
crash loop or a 30 s shutdown deadline takes microseconds.
"""

from __future__ import annotations

import signal

from cotyledon.core import RespawnPolicy
from cotyledon.core import StopReason
from cotyledon_testkit import ManagerAnnounced
from cotyledon_testkit import Simulator
from cotyledon_testkit import WorkerBehaviour
from cotyledon_testkit import WorkerEnded
from cotyledon_testkit import WorkerKilled
from cotyledon_testkit import WorkerStarted

HOUR = 3600.0


def test_crash_loop_backoff_stays_near_max() -> None:
    sim = Simulator(seed=3)
    sim.add("crasher", behaviour=WorkerBehaviour(crash_after=0.0))
    sim.add("steady")
    sim.start()

    sim.advance(HOUR)

    delays = [r.respawn_delay for r in sim.records(WorkerEnded) if r.service == "crasher"]
    settled = [delay for delay in delays[20:] if delay is not None]
    assert len(settled) > 80
    assert min(settled) >= 27.0
    assert max(settled) <= 33.0
    assert sim.restarts("steady") == 0


def test_crash_loop_delay_follows_policy() -> None:
    policy = RespawnPolicy(initial_delay=1.0, max_delay=8.0, multiplier=3.0, jitter=0.0)
    sim = Simulator(respawn_policy=policy)
    sim.add("crasher", behaviour=WorkerBehaviour(crash_after=0.0))
    sim.start()

    sim.advance(60.0)

    delays = [record.respawn_delay for record in sim.records(WorkerEnded)]
    assert delays[:6] == [0.0, 1.0, 3.0, 8.0, 8.0, 8.0]


def test_long_lived_worker_restarts_at_once() -> None:
    sim = Simulator()
    sim.add("web", behaviour=WorkerBehaviour(crash_after=15.0))
    sim.start()

    sim.advance(HOUR)

    delays = {record.respawn_delay for record in sim.records(WorkerEnded)}
    assert delays == {0.0}
    assert sim.restarts("web") == 240


def test_shutdown_kills_each_service_at_own_deadline() -> None:
    stuck = WorkerBehaviour(stop_after=None)
    sim = Simulator(graceful_shutdown_timeout=30.0)
    sim.add("web", 2, behaviour=stuck)
    sim.add("batch", behaviour=stuck, graceful_shutdown_timeout=5.0)
    sim.start()

    sim.send_signal(signal.SIGTERM)
    sim.run_until_idle()

    kills = [(record.service, record.time) for record in sim.records(WorkerKilled)]
    assert kills == [("batch", 5.0), ("web", 30.0), ("web", 30.0)]
    assert sim.exit_status == 0


def test_shutdown_during_backoff_drops_slot() -> None:
    sim = Simulator(random=lambda: 0.5)
    sim.add("web")
    sim.start()
    sim.exit("web", 0)
    sim.exit("web", 0)

    sim.send_signal(signal.SIGTERM)

    assert sim.exit_status == 0
    assert sim.records(WorkerStarted)[-1].time == 0.0


def test_interrupt_shortens_graceful_deadline() -> None:
    sim = Simulator(graceful_shutdown_timeout=30.0)
    sim.add("web", behaviour=WorkerBehaviour(stop_after=None, interrupt_after=None))
    sim.start()

    sim.send_signal(signal.SIGTERM)
    sim.advance(10.0)
    sim.send_signal(signal.SIGINT)
    sim.run_until_idle()

    assert [record.time for record in sim.records(WorkerKilled)] == [11.0]
    assert sim.exit_status == 1


def test_restart_reload_waits_for_ready_replacement() -> None:
    sim = Simulator()
    sim.add("web", 2, behaviour=WorkerBehaviour(ready_after=2.0), reload="restart")
    sim.start()
    sim.run_until_idle()

    sim.send_signal(signal.SIGHUP)
    sim.run_until_idle()

    reasons = {record.stop_reason for record in sim.records(WorkerEnded)}
    announced = [(r.announcement, r.time) for r in sim.records(ManagerAnnounced)]
    assert reasons == {StopReason.RESTART}
    assert announced == [("ready", 2.0), ("reloading", 2.0), ("reloaded", 4.0)]
