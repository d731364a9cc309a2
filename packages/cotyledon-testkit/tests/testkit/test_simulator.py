"""Simulator: the pure supervisor against fake processes, on a fake clock.

No test here starts a process or sleeps. Unless a test sets its own, the
jitter source returns 0.5, which moves no delay, so the backoff delays are
exactly 0, 0.1, 0.2, 0.4 s and so on.
"""

from __future__ import annotations

import signal
import threading

import pytest

import cotyledon
from cotyledon import ManagerPhase
from cotyledon.core import StopReason
from cotyledon.core import WorkerSignal
from cotyledon_testkit import FakeClock
from cotyledon_testkit import HooksRun
from cotyledon_testkit import ManagerAnnounced
from cotyledon_testkit import ManagerExited
from cotyledon_testkit import SimulationLimitError
from cotyledon_testkit import Simulator
from cotyledon_testkit import WorkerBehaviour
from cotyledon_testkit import WorkerEnded
from cotyledon_testkit import WorkerKilled
from cotyledon_testkit import WorkerReady
from cotyledon_testkit import WorkerReloaded
from cotyledon_testkit import WorkerSignalled
from cotyledon_testkit import WorkerStarted
from cotyledon_testkit import WorkerStartFailed


def _no_jitter() -> float:
    return 0.5


class Mailer(cotyledon.Service):
    """Keeps the default reload(), so a reload restarts its workers."""

    name = "mailer"
    graceful_shutdown_timeout = 5.0

    def run(self) -> None:
        threading.Event().wait()


class Indexer(cotyledon.Service):
    """Reloads in place."""

    def run(self) -> None:
        threading.Event().wait()

    def reload(self) -> None:
        pass


def _simulator(graceful_shutdown_timeout: float = 60.0) -> Simulator:
    return Simulator(random=_no_jitter, graceful_shutdown_timeout=graceful_shutdown_timeout)


def _announcements(sim: Simulator) -> list[str]:
    return [record.announcement for record in sim.records(ManagerAnnounced)]


def _respawn_delays(sim: Simulator, service: str) -> list[float | None]:
    ended = sim.records(WorkerEnded)
    return [record.respawn_delay for record in ended if record.service == service]


# Starting


def test_simulator_start_spawns_every_worker() -> None:
    sim = _simulator()
    sim.add("web", 2)
    sim.add("batch")

    sim.start()

    assert list(sim.processes()) == [("batch", 0), ("web", 0), ("web", 1)]
    assert len({process.pid for process in sim.processes().values()}) == 3


def test_simulator_start_announces_ready() -> None:
    sim = _simulator()
    sim.add("web", 2)

    sim.start()

    assert _announcements(sim) == ["ready"]
    assert sim.status().ready


def test_simulator_waits_for_reported_readiness() -> None:
    sim = _simulator()
    sim.add("web", 2, behaviour=WorkerBehaviour(ready_after=None))
    sim.start()

    sim.ready("web", 0)
    before_last = _announcements(sim)
    sim.ready("web", 1)

    assert before_last == []
    assert _announcements(sim) == ["ready"]


def test_simulator_delays_readiness_by_behaviour() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(ready_after=2.5))
    sim.start()

    sim.advance(2.0)
    early = sim.records(WorkerReady)
    sim.advance(0.5)

    assert early == []
    assert [record.time for record in sim.records(WorkerReady)] == [2.5]


def test_simulator_add_after_start_spawns() -> None:
    sim = _simulator().start()

    sim.add("late", 2)

    assert list(sim.processes("late")) == [("late", 0), ("late", 1)]


def test_simulator_start_twice_raises() -> None:
    sim = _simulator().start()

    with pytest.raises(RuntimeError, match="already started"):
        sim.start()


# Services


def test_simulator_reads_service_class() -> None:
    sim = _simulator(graceful_shutdown_timeout=60.0)

    mailer = sim.add(Mailer)
    indexer = sim.add(Indexer)

    mailer_spec = sim.supervisor.spec(mailer)
    indexer_spec = sim.supervisor.spec(indexer)
    assert mailer_spec is not None
    assert indexer_spec is not None
    assert mailer_spec.name == "mailer"
    assert mailer_spec.graceful_shutdown_timeout == 5.0
    assert mailer_spec.reload_policy is cotyledon.core.ReloadPolicy.RESTART
    assert indexer_spec.name == "Indexer"
    assert indexer_spec.graceful_shutdown_timeout == 60.0
    assert indexer_spec.reload_policy is cotyledon.core.ReloadPolicy.IN_PLACE


def test_simulator_rejects_bad_worker_count() -> None:
    sim = _simulator()

    with pytest.raises(ValueError, match="workers must be an int >= 1 for service 'web'"):
        sim.add("web", 0)


def test_simulator_unknown_service_raises() -> None:
    sim = _simulator()
    sim.add("web")

    with pytest.raises(LookupError, match=r"no service named 'mail'; services: \['web'\]"):
        sim.exit("mail", 0)


def test_simulator_finds_service_by_class() -> None:
    sim = _simulator()
    sim.add(Mailer, workers=2)
    sim.start()

    process = sim.exit(Mailer, 1, code=1)

    assert process.service == "mailer"
    assert sim.restarts(Mailer) == 1
    with pytest.raises(LookupError, match=r"no service named 'Indexer'; services: \['mailer'\]"):
        sim.pid(Indexer, 0)


def test_simulator_ambiguous_name_raises() -> None:
    sim = _simulator()
    first = sim.add("web")
    sim.add("web")
    sim.start()

    with pytest.raises(LookupError, match="2 services are named 'web'"):
        sim.exit("web", 0)
    assert sim.exit(first, 0).service_id == first


def test_simulator_reconfigure_retires_highest_worker() -> None:
    sim = _simulator()
    sim.add("web", 3)
    sim.start()

    sim.reconfigure("web", 2)

    ended = sim.records(WorkerEnded)
    assert [(record.worker_id, record.stop_reason) for record in ended] == [(2, StopReason.RETIRE)]
    assert list(sim.processes()) == [("web", 0), ("web", 1)]


# Deaths and backoff


def test_simulator_exit_respawns_at_once() -> None:
    sim = _simulator()
    sim.add("web", 2)
    sim.start()
    old = sim.pid("web", 1)

    dead = sim.exit("web", 1, code=3)

    assert dead.exit_code == 3
    assert sim.pid("web", 1) != old
    assert sim.restarts("web") == 1


def test_simulator_backoff_doubles_between_crashes() -> None:
    sim = _simulator()
    sim.add("web")
    sim.start()

    for _ in range(5):
        sim.exit("web", 0)
        sim.run_until_idle()

    assert _respawn_delays(sim, "web") == [0.0, 0.1, 0.2, 0.4, 0.8]
    assert [record.time for record in sim.records(WorkerStarted)] == pytest.approx(
        [0.0, 0.0, 0.1, 0.3, 0.7, 1.5]
    )


def test_simulator_backoff_stops_at_max_delay() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(crash_after=0.0))
    sim.start()

    sim.advance(600.0)

    delays = _respawn_delays(sim, "web")
    assert max(delay for delay in delays if delay is not None) == 30.0
    assert delays[-3:] == [30.0, 30.0, 30.0]


def test_simulator_stable_worker_resets_backoff() -> None:
    sim = _simulator()
    sim.add("web")
    sim.start()
    for _ in range(3):
        sim.exit("web", 0)
        sim.run_until_idle()

    sim.advance(10.0)
    sim.exit("web", 0)

    assert _respawn_delays(sim, "web") == [0.0, 0.1, 0.2, 0.0]


def test_simulator_slots_back_off_alone() -> None:
    sim = _simulator()
    sim.add("web", 2)
    sim.start()
    for _ in range(4):
        sim.exit("web", 0)
        sim.run_until_idle()

    sim.exit("web", 1)

    last = sim.records(WorkerEnded)[-1]
    assert last.worker_id == 1
    assert last.respawn_delay == 0.0


def test_simulator_jitter_comes_from_seed() -> None:
    first = Simulator(seed=7)
    second = Simulator(seed=7)
    for sim in (first, second):
        sim.add("web")
        sim.start()
        for _ in range(4):
            sim.exit("web", 0)
            sim.run_until_idle()

    assert _respawn_delays(first, "web") == _respawn_delays(second, "web")
    assert _respawn_delays(first, "web")[1:] != [0.1, 0.2, 0.4]


def test_simulator_fail_spawns_backs_off() -> None:
    sim = _simulator()
    sim.add("web")
    sim.fail_spawns("web", times=2, reason="OSError: out of pids")

    sim.start()
    sim.run_until_idle()

    failures = sim.records(WorkerStartFailed)
    assert [record.reason for record in failures] == ["OSError: out of pids"] * 2
    assert [record.retry_delay for record in failures] == [0.1, 0.2]
    assert [record.time for record in sim.records(WorkerStarted)] == pytest.approx([0.3])


def test_simulator_fail_spawns_until_allowed() -> None:
    sim = _simulator()
    sim.add("web")
    sim.fail_spawns()
    sim.start()

    sim.advance(10.0)
    failed = len(sim.records(WorkerStartFailed))
    sim.allow_spawns()
    sim.run_until_idle()

    assert failed >= 5
    assert list(sim.processes()) == [("web", 0)]


def test_simulator_exit_without_worker_raises() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(crash_after=0.0))
    sim.start()

    with pytest.raises(LookupError, match=r"no live worker web\(0\) at t=0.000"):
        sim.exit("web", 0)


# Manager signals and deadlines


def test_simulator_sigterm_exits_zero() -> None:
    sim = _simulator()
    sim.add("web", 2)
    sim.start()

    sim.send_signal(signal.SIGTERM)

    assert sim.exit_status == 0
    assert sim.phase is ManagerPhase.DONE
    assert sim.records(HooksRun) == [HooksRun(0.0, "on_terminate")]


def test_simulator_sigterm_kills_at_deadline() -> None:
    sim = _simulator(graceful_shutdown_timeout=30.0)
    sim.add("web", behaviour=WorkerBehaviour(stop_after=None))
    sim.add("quick")
    sim.start()
    sim.advance(5.0)

    sim.send_signal(signal.SIGTERM)
    sim.run_until_idle()

    killed = sim.records(WorkerKilled)
    assert [(record.service, record.time, record.waited) for record in killed] == [
        ("web", 35.0, 30.0)
    ]
    assert sim.records(WorkerEnded)[-1].exit_code == -signal.SIGKILL
    assert sim.records(ManagerExited) == [ManagerExited(35.0, 0)]


def test_simulator_worker_stopping_in_time_survives() -> None:
    sim = _simulator(graceful_shutdown_timeout=30.0)
    sim.add("web", behaviour=WorkerBehaviour(stop_after=29.0))
    sim.start()

    sim.send_signal(signal.SIGTERM)
    sim.run_until_idle()

    assert sim.records(WorkerKilled) == []
    assert sim.now == 29.0


def test_simulator_zero_timeout_waits_forever() -> None:
    sim = _simulator(graceful_shutdown_timeout=0)
    sim.add("web", behaviour=WorkerBehaviour(stop_after=None))
    sim.start()

    sim.send_signal(signal.SIGTERM)
    sim.run_until_idle()
    sim.exit("web", 0, code=0)

    assert sim.records(WorkerKilled) == []
    assert sim.exit_status == 0


def test_simulator_sigint_exits_one() -> None:
    sim = _simulator()
    sim.add("web", 2)
    sim.start()

    sim.send_signal(signal.SIGINT)

    assert sim.exit_status == 1
    assert {record.exit_code for record in sim.records(WorkerEnded)} == {1}


def test_simulator_sigint_kills_after_grace() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(interrupt_after=None))
    sim.start()

    sim.send_signal(signal.SIGINT)
    sim.run_until_idle()

    assert [record.waited for record in sim.records(WorkerKilled)] == [1.0]
    assert sim.exit_status == 1


def test_simulator_sigint_hurries_graceful_stop() -> None:
    sim = _simulator(graceful_shutdown_timeout=30.0)
    sim.add("web", behaviour=WorkerBehaviour(stop_after=None, interrupt_after=None))
    sim.start()

    sim.send_signal(signal.SIGTERM)
    sim.advance(2.0)
    sim.send_signal(signal.SIGINT)
    sim.run_until_idle()

    assert [record.time for record in sim.records(WorkerKilled)] == [3.0]


def test_simulator_sighup_reloads_in_place() -> None:
    sim = _simulator()
    sim.add(Indexer, 2)
    sim.start()
    pids = {key: process.pid for key, process in sim.processes().items()}

    sim.send_signal(signal.SIGHUP)

    assert len(sim.records(WorkerReloaded)) == 2
    assert _announcements(sim) == ["ready", "reloading", "reloaded"]
    assert {key: process.pid for key, process in sim.processes().items()} == pids


def test_simulator_sighup_restarts_default_reload() -> None:
    sim = _simulator()
    sim.add(Mailer)
    sim.start()
    old = sim.pid("mailer", 0)

    sim.send_signal(signal.SIGHUP)

    ended = sim.records(WorkerEnded)
    assert [(record.pid, record.stop_reason) for record in ended] == [(old, StopReason.RESTART)]
    assert sim.pid("mailer", 0) != old
    assert _announcements(sim) == ["ready", "reloading", "reloaded"]


def test_simulator_reload_waits_for_report() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(reload_after=None))
    sim.start()

    sim.send_signal(signal.SIGHUP)
    pending = _announcements(sim)
    sim.reloaded("web", 0)

    assert pending == ["ready", "reloading"]
    assert _announcements(sim) == ["ready", "reloading", "reloaded"]


def test_simulator_cancelled_reload_leaves_workers() -> None:
    sim = _simulator()
    sim.add(Mailer)
    sim.start()
    old = sim.pid("mailer", 0)
    sim.cancel_next_reload()

    sim.send_signal(signal.SIGHUP)
    sim.send_signal(signal.SIGHUP)

    announced = [(r.announcement, r.cancelled_reload) for r in sim.records(ManagerAnnounced)]
    assert announced == [
        ("ready", False),
        ("reloading", False),
        ("reloaded", True),
        ("reloading", False),
        ("reloaded", False),
    ]
    assert sim.records(WorkerEnded)[0].pid == old
    assert "manager reload cancelled by a hook" in sim.log_text()


def test_simulator_sigalrm_is_ignored() -> None:
    sim = _simulator()
    sim.add("web")
    sim.start()

    sim.send_signal(signal.SIGALRM)

    assert sim.phase is ManagerPhase.RUNNING
    assert str(sim.log[-1]).endswith("manager received SIGALRM")


def test_simulator_rejects_unhandled_signal() -> None:
    sim = _simulator().start()

    with pytest.raises(ValueError, match="not SIGUSR1"):
        sim.send_signal(signal.SIGUSR1)


def test_simulator_records_signals_on_process() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(stop_after=None, interrupt_after=None))
    sim.start()
    process = sim.process("web", 0)

    sim.send_signal(signal.SIGTERM)
    sim.send_signal(signal.SIGINT)

    assert process.signals == [WorkerSignal.TERMINATE, WorkerSignal.INTERRUPT]
    assert [record.signal for record in sim.records(WorkerSignalled)] == process.signals


# Time and limits


def test_simulator_advance_handles_timers_in_order() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(crash_after=1.0))
    sim.start()

    sim.advance(3.5)

    assert [record.time for record in sim.records(WorkerEnded)] == pytest.approx([1.0, 2.0, 3.1])
    assert sim.now == 3.5


def test_simulator_advance_rejects_negative() -> None:
    sim = _simulator()

    with pytest.raises(ValueError, match="finite number of seconds >= 0"):
        sim.advance(-1.0)


def test_simulator_run_until_idle_limit_raises() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(crash_after=1.0))
    sim.start()

    with pytest.raises(SimulationLimitError) as caught:
        sim.run_until_idle(max_seconds=120.0)

    message = str(caught.value)
    assert "still busy after 120.0 s of fake time" in message
    assert "web(0) pid" in message
    assert "log tail:" in message


def test_simulator_run_until_idle_returns_time() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(ready_after=4.0))
    sim.start()

    assert sim.run_until_idle() == 4.0


# Observing


def test_simulator_log_reads_as_lines() -> None:
    sim = _simulator()
    sim.add("web")
    sim.start()
    sim.exit("web", 0, code=2)

    lines = sim.log_text().splitlines()

    assert lines[0] == "     0.000  manager started"
    assert lines[1] == "     0.000  web(0) started as pid 1000"
    assert lines[-3] == "     0.000  web(0) pid 1000 exited with status 2; respawn in 0.000 s"


def test_simulator_repr_shows_state() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(crash_after=1.0))
    sim.start()

    running = repr(sim)
    sim.send_signal(signal.SIGTERM)

    assert running == "<Simulator t=0.000 phase=running live=1 next=1.000 records=4>"
    assert repr(sim) == "<Simulator t=0.000 phase=done exit_status=0 records=10>"


def test_simulator_keeps_every_process() -> None:
    sim = _simulator()
    sim.add("web")
    sim.start()
    sim.exit("web", 0, code=-signal.SIGSEGV)

    first, second = sim.all_processes

    assert first.exit_code == -signal.SIGSEGV
    assert not first.alive
    assert second.alive
    assert repr(first) == "<FakeProcess web(0) pid=1000 exited=-11 ready>"


def test_worker_behaviour_rejects_negative_delay() -> None:
    with pytest.raises(ValueError, match="stop_after must be None or a finite number"):
        WorkerBehaviour(stop_after=-1.0)


def test_simulator_fixture_uses_fake_clock(simulator: Simulator, fake_clock: FakeClock) -> None:
    simulator.add("web")
    simulator.start()

    fake_clock.advance(12.0)

    assert simulator.now == 12.0
    assert simulator.process("web", 0).started_at == 0.0


def test_simulator_records_ready_once_per_worker() -> None:
    sim = _simulator()
    sim.add("web", 2)

    sim.start()

    assert [(r.service, r.worker_id) for r in sim.records(WorkerReady)] == [("web", 0), ("web", 1)]


# A clock shared with the test


def test_simulator_rejects_clock_moved_past_timer() -> None:
    clock = FakeClock()
    sim = Simulator(clock=clock)
    sim.add("importer", behaviour=WorkerBehaviour(crash_after=1.0))
    sim.start()

    clock.advance(3.0)
    with pytest.raises(RuntimeError, match=r"due at 1\.000 s.*already at 3\.000 s") as caught:
        sim.advance(0)

    assert "simulator.advance()" in str(caught.value)
    assert sim.records(WorkerEnded) == []


def test_simulator_accepts_clock_moved_before_timer() -> None:
    clock = FakeClock()
    sim = Simulator(clock=clock)
    sim.add("importer", behaviour=WorkerBehaviour(crash_after=1.0))
    sim.start()

    clock.advance(0.5)
    sim.advance(0.5)

    assert [record.time for record in sim.records(WorkerEnded)] == [1.0]
