"""Simulator: the supervision policies of ``Simulator.add``, on a fake clock.

The policies are those of ``ServiceManager.add``, checked by the same
code. Unless a test sets its own, the jitter source returns 0.5: backoff
delays are exactly 0, 0.1, 0.2 s and so on, and a worker with a
``max_age`` is recycled at 95 % of it.
"""

from __future__ import annotations

import inspect
import signal
from typing import Any

import pytest

import cotyledon
from cotyledon import ServiceState
from cotyledon.core import GIVE_UP_EXIT_STATUS
from cotyledon.core import GiveUpAction
from cotyledon.core import ManagerPhase
from cotyledon.core import ReloadPolicy
from cotyledon.core import RestartPolicy
from cotyledon.core import StopReason
from cotyledon.core import WorkerSignal
from cotyledon_testkit import ManagerAnnounced
from cotyledon_testkit import ManagerExited
from cotyledon_testkit import ServiceEnded
from cotyledon_testkit import Simulator
from cotyledon_testkit import WorkerBehaviour
from cotyledon_testkit import WorkerEnded
from cotyledon_testkit import WorkerKilled
from cotyledon_testkit import WorkerSignalled
from cotyledon_testkit import WorkerStarted


def _simulator(graceful_shutdown_timeout: float = 60.0) -> Simulator:
    return Simulator(random=lambda: 0.5, graceful_shutdown_timeout=graceful_shutdown_timeout)


def _ended(sim: Simulator) -> list[tuple[str, ServiceState]]:
    return [(record.service, record.state) for record in sim.records(ServiceEnded)]


def _stops(sim: Simulator, reason: StopReason) -> list[tuple[float, str, int]]:
    """Return (time to the microsecond, service, worker id) of each stop
    request sent for ``reason``."""
    return [
        (round(record.time, 6), record.service, record.worker_id)
        for record in sim.records(WorkerSignalled)
        if record.reason is reason
    ]


# Arguments


def test_simulator_add_policies_match_manager() -> None:
    manager = inspect.signature(cotyledon.ServiceManager.add).parameters
    simulator = inspect.signature(Simulator.add).parameters

    expected = {
        name: (parameter.default, parameter.annotation)
        for name, parameter in manager.items()
        if parameter.kind is parameter.KEYWORD_ONLY
    }
    actual = {
        name: (parameter.default, parameter.annotation)
        for name, parameter in simulator.items()
        if name in expected and parameter.kind is parameter.KEYWORD_ONLY
    }

    assert len(expected) == 10
    assert actual == expected


def test_simulator_policies_reach_spec() -> None:
    sim = _simulator()

    service_id = sim.add(
        "web",
        restart="on-failure",
        restart_prevent_exit_status=[3, 4],
        max_restarts=(5, 30),
        on_give_up="continue",
        stop_manager_on_exit=True,
        startup_timeout=2,
        heartbeat_timeout=1.5,
        max_age=3600,
        reload="rolling",
    )

    spec = sim.supervisor.spec(service_id)
    assert spec is not None
    assert spec.restart is RestartPolicy.ON_FAILURE
    assert spec.restart_prevent_exit_statuses == frozenset({3, 4})
    assert spec.max_restarts == (5, 30.0)
    assert spec.on_give_up is GiveUpAction.CONTINUE
    assert spec.stop_manager_on_exit is True
    assert (spec.startup_timeout, spec.heartbeat_timeout, spec.max_age) == (2.0, 1.5, 3600.0)
    assert spec.reload_policy is ReloadPolicy.ROLLING


def test_simulator_name_reloads_in_place() -> None:
    sim = _simulator()

    service_id = sim.add("web")

    spec = sim.supervisor.spec(service_id)
    assert spec is not None
    assert spec.reload_policy is ReloadPolicy.IN_PLACE


@pytest.mark.parametrize(
    ("policies", "error", "message"),
    [
        ({"restart": "sometimes"}, cotyledon.InvalidArgumentError, r"restart of service 'web'"),
        ({"restart": 1}, cotyledon.InvalidTypeError, r"restart of service 'web' must be one of"),
        ({"restart_prevent_exit_status": 3}, cotyledon.InvalidTypeError, r"exit statuses"),
        ({"max_restarts": (-1, 10)}, cotyledon.InvalidArgumentError, r"an int >= 0"),
        ({"max_restarts": (1, 0)}, cotyledon.InvalidArgumentError, r"the period must be"),
        ({"on_give_up": "panic"}, cotyledon.InvalidArgumentError, r"on_give_up of service 'web'"),
        ({"stop_manager_on_exit": 1}, cotyledon.InvalidTypeError, r"must be True or False"),
        ({"startup_timeout": 0}, cotyledon.InvalidArgumentError, r"startup_timeout of service"),
        ({"heartbeat_timeout": float("nan")}, cotyledon.InvalidArgumentError, r"finite number"),
        ({"max_age": "1h"}, cotyledon.InvalidTypeError, r"max_age of service 'web' must be"),
        ({"reload": "hot"}, cotyledon.InvalidArgumentError, r"reload of service 'web' must be"),
    ],
)
def test_simulator_rejects_bad_policy(
    policies: dict[str, Any], error: type[Exception], message: str
) -> None:
    sim = _simulator()

    with pytest.raises(error, match=message):
        sim.add("web", **policies)


# The errors that ServiceManager.add raises for the class attribute, and
# ServiceManager() for its argument.
BAD_TIMEOUTS = [
    (-1, cotyledon.InvalidArgumentError, r">= 0 seconds, got -1"),
    (float("nan"), cotyledon.InvalidArgumentError, r"finite number of seconds, got nan"),
    (float("inf"), cotyledon.InvalidArgumentError, r"finite number of seconds, got inf"),
    ("5", cotyledon.InvalidTypeError, r"a number of seconds >= 0 or None, got '5' \(str\)"),
    (True, cotyledon.InvalidTypeError, r"got True \(bool\)"),
]


@pytest.mark.parametrize(("timeout", "error", "message"), BAD_TIMEOUTS)
def test_simulator_rejects_bad_class_timeout(
    timeout: object, error: type[Exception], message: str
) -> None:
    service = type(
        "Bad", (cotyledon.Service,), {"name": "bad", "graceful_shutdown_timeout": timeout}
    )
    sim = _simulator()

    with pytest.raises(error, match=message) as caught:
        sim.add(service)

    assert "graceful_shutdown_timeout of service 'bad'" in str(caught.value)
    assert sim.log == []


@pytest.mark.parametrize(("timeout", "error", "message"), BAD_TIMEOUTS)
def test_simulator_rejects_bad_keyword_timeout(
    timeout: Any, error: type[Exception], message: str
) -> None:
    sim = _simulator()

    with pytest.raises(error, match=message) as caught:
        sim.add("bad", graceful_shutdown_timeout=timeout)

    assert "graceful_shutdown_timeout of service 'bad'" in str(caught.value)


def test_simulator_checks_overridden_class_timeout() -> None:
    service = type("Bad", (cotyledon.Service,), {"name": "bad", "graceful_shutdown_timeout": -1})
    sim = _simulator()

    with pytest.raises(cotyledon.InvalidArgumentError, match="of service 'bad'"):
        sim.add(service, graceful_shutdown_timeout=5)


@pytest.mark.parametrize(("timeout", "error", "message"), BAD_TIMEOUTS)
def test_simulator_rejects_bad_manager_timeout(
    timeout: Any, error: type[Exception], message: str
) -> None:
    # The manager's own timeout may not be None.
    message = message.replace(" or None", "")

    with pytest.raises(error, match=message):
        Simulator(graceful_shutdown_timeout=timeout)


# Restart policy


def test_simulator_on_failure_finishes_clean_exit() -> None:
    sim = _simulator()
    sim.add("job", restart="on-failure")
    sim.add("web")
    sim.start()

    sim.exit("job", 0, code=0)

    assert sim.records(WorkerEnded)[-1].respawn_delay is None
    assert _ended(sim) == [("job", ServiceState.FINISHED)]
    assert sim.phase is ManagerPhase.RUNNING
    assert "service job finished" in sim.log_text()


def test_simulator_on_failure_restarts_failure() -> None:
    sim = _simulator()
    sim.add("job", restart="on-failure")
    sim.start()
    old = sim.pid("job", 0)

    sim.exit("job", 0, code=1)

    assert sim.pid("job", 0) != old
    assert _ended(sim) == []


def test_simulator_prevent_exit_status_finishes() -> None:
    sim = _simulator()
    sim.add("web", 2, restart_prevent_exit_status=(3,))
    sim.start()

    sim.exit("web", 0, code=3)
    sim.exit("web", 1, code=4)

    assert [(r.worker_id, r.respawn_delay) for r in sim.records(WorkerEnded)] == [
        (0, None),
        (1, 0.0),
    ]
    assert list(sim.processes()) == [("web", 1)]


def test_simulator_last_finished_service_stops() -> None:
    sim = _simulator()
    sim.add("job", 2, restart="never")
    sim.start()

    sim.exit("job", 0, code=0)
    sim.exit("job", 1, code=2)

    assert _ended(sim) == [("job", ServiceState.FINISHED)]
    assert sim.exit_status == 0


# Restart intensity


def test_simulator_gives_up_past_max_restarts() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(crash_after=1.0), max_restarts=(3, 60.0))
    sim.add("steady")
    sim.start()

    sim.run_until_idle()

    given_up = sim.records(ServiceEnded)
    crashes = [
        (round(r.time, 6), r.respawn_delay) for r in sim.records(WorkerEnded) if r.service == "web"
    ]
    assert _ended(sim) == [("web", ServiceState.GIVEN_UP)]
    assert crashes == [(1.0, 0.0), (2.0, 0.1), (3.1, 0.2), (4.3, None)]
    assert given_up[0].time == pytest.approx(4.3)
    assert sim.exit_status == GIVE_UP_EXIT_STATUS
    assert _stops(sim, StopReason.SHUTDOWN) == [(4.3, "steady", 0)]


def test_simulator_give_up_continue_keeps_others() -> None:
    sim = _simulator()
    sim.add("web", 2, max_restarts=(0, 60.0), on_give_up="continue")
    sim.add("steady")
    sim.start()

    sim.exit("web", 0)

    assert _ended(sim) == [("web", ServiceState.GIVEN_UP)]
    assert _stops(sim, StopReason.GIVE_UP) == [(0.0, "web", 1)]
    assert list(sim.processes()) == [("steady", 0)]
    assert sim.phase is ManagerPhase.RUNNING


def test_simulator_restarts_period_apart_allowed() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(crash_after=10.0), max_restarts=(1, 10.0))
    sim.start()

    sim.advance(100.0)

    # Each crash comes exactly one period after the one before, which then
    # no longer counts.
    assert sim.restarts("web") == 10
    assert _ended(sim) == []


# Stop on exit


@pytest.mark.parametrize(("code", "status"), [(0, 0), (3, 3), (-signal.SIGKILL, 137)])
def test_simulator_stop_on_exit_uses_status(code: int, status: int) -> None:
    sim = _simulator()
    sim.add("web")
    sim.add("migrations", stop_manager_on_exit=True)
    sim.start()

    sim.exit("migrations", 0, code=code)

    assert sim.exit_status == status
    assert _stops(sim, StopReason.SHUTDOWN) == [(0.0, "web", 0)]


# Readiness and liveness


def test_simulator_startup_timeout_restarts_worker() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(ready_after=None), startup_timeout=5.0)
    sim.start()

    sim.advance(5.0)

    ended = sim.records(WorkerEnded)
    assert _stops(sim, StopReason.STARTUP_TIMEOUT) == [(5.0, "web", 0)]
    assert [(r.stop_reason, r.respawn_delay) for r in ended] == [(StopReason.STARTUP_TIMEOUT, 0.0)]
    assert [record.time for record in sim.records(WorkerStarted)] == [0.0, 5.0]
    assert sim.restarts("web") == 1


def test_simulator_startup_timeout_kills_at_deadline() -> None:
    sim = _simulator(graceful_shutdown_timeout=30.0)
    stuck = WorkerBehaviour(ready_after=None, stop_after=None)
    sim.add("web", behaviour=stuck, startup_timeout=5.0)
    sim.start()

    sim.advance(35.0)

    assert [(r.time, r.waited) for r in sim.records(WorkerKilled)] == [(35.0, 30.0)]
    assert sim.records(WorkerEnded)[0].stop_reason is StopReason.STARTUP_TIMEOUT


def test_simulator_ready_in_time_kept() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(ready_after=4.9), startup_timeout=5.0)
    sim.start()

    sim.advance(60.0)

    assert sim.records(WorkerSignalled) == []


def test_simulator_heartbeats_keep_worker() -> None:
    sim = _simulator()
    sim.add("web", heartbeat_timeout=2.0)
    sim.start()

    sim.advance(600.0)

    assert sim.records(WorkerSignalled) == []


def test_simulator_hung_worker_is_replaced() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(hang_after=3.0), heartbeat_timeout=2.0)
    sim.start()

    sim.advance(5.0)

    # Heartbeats every 0.5 s until 3.0 s: the last, at 2.5 s, lasts until 4.5 s.
    assert _stops(sim, StopReason.HUNG) == [(4.5, "web", 0)]
    assert sim.records(WorkerEnded)[0].stop_reason is StopReason.HUNG
    assert [record.time for record in sim.records(WorkerStarted)] == [0.0, 4.5]


def test_simulator_heartbeat_by_hand() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(hang_after=0.0), heartbeat_timeout=2.0)
    sim.start()
    sim.advance(1.5)

    sim.heartbeat("web", 0)
    sim.advance(1.9)
    before_deadline = _stops(sim, StopReason.HUNG)
    sim.advance(0.1)

    assert before_deadline == []
    assert _stops(sim, StopReason.HUNG) == [(3.5, "web", 0)]


# Recycling


def test_simulator_max_age_recycles_worker() -> None:
    sim = _simulator()
    sim.add("web", max_age=100.0)
    sim.start()
    old = sim.pid("web", 0)

    sim.advance(95.0)

    ended = sim.records(WorkerEnded)
    assert [(r.pid, r.stop_reason, r.respawn_delay) for r in ended] == [
        (old, StopReason.MAX_AGE, 0.0)
    ]
    assert sim.process("web", 0).started_at == 95.0
    assert sim.restarts("web") == 0


# Rolling reload


def _rolling(**policies: Any) -> Simulator:
    """Return a started simulation of two ``web`` workers, each ready 1 s after its start."""
    sim = _simulator()
    sim.add("web", 2, behaviour=WorkerBehaviour(ready_after=1.0), reload="rolling", **policies)
    sim.start()
    sim.advance(1.0)
    return sim


def test_simulator_rolling_reload_one_by_one() -> None:
    sim = _rolling()
    old = {key: process.pid for key, process in sim.processes().items()}

    sim.send_signal(signal.SIGHUP)
    during = {key: process.pid for key, process in sim.processes().items()}
    replacement = sim.replacement("web", 0)
    sim.run_until_idle()

    retired = [(r.time, r.pid, r.stop_reason) for r in sim.records(WorkerEnded)]
    assert during == old
    assert replacement.started_at == 1.0
    assert retired == [
        (2.0, old[("web", 0)], StopReason.RESTART),
        (3.0, old[("web", 1)], StopReason.RESTART),
    ]
    assert sim.process("web", 0).pid == replacement.pid
    assert [(r.announcement, r.time) for r in sim.records(ManagerAnnounced)][-1] == (
        "reloaded",
        3.0,
    )


def test_simulator_rolling_replacement_ready_by_hand() -> None:
    sim = _simulator()
    sim.add("web", behaviour=WorkerBehaviour(ready_after=None), reload="rolling")
    sim.start()
    sim.ready("web", 0)
    old = sim.pid("web", 0)
    sim.send_signal(signal.SIGHUP)

    new = sim.ready("web", 0, replacement=True)

    assert sim.pid("web", 0) == new.pid != old
    assert sim.records(ManagerAnnounced)[-1].announcement == "reloaded"


def test_simulator_rolling_unready_replacement_fails() -> None:
    sim = _simulator()
    sim.add("web", 2, behaviour=WorkerBehaviour(ready_after=None), reload="rolling")
    sim.start()
    sim.ready("web", 0)
    sim.ready("web", 1)
    old = {key: process.pid for key, process in sim.processes("web").items()}

    sim.send_signal(signal.SIGHUP)
    sim.advance(60.0)

    last = sim.records(ManagerAnnounced)[-1]
    assert _stops(sim, StopReason.STARTUP_TIMEOUT) == [(60.0, "web", 0)]
    assert (last.announcement, last.failed_reload) == ("reloaded", True)
    assert {key: process.pid for key, process in sim.processes("web").items()} == old
    assert "manager reload failed" in sim.log_text()


def test_simulator_replacement_missing_raises() -> None:
    sim = _rolling()

    with pytest.raises(LookupError, match=r"web\(0\) has no live replacement at t=1.000"):
        sim.replacement("web", 0)


def test_simulator_rolling_replacement_signalled() -> None:
    sim = _rolling()
    sim.send_signal(signal.SIGHUP)
    replacement = sim.replacement("web", 0)

    sim.send_signal(signal.SIGTERM)

    assert replacement.signals == [WorkerSignal.TERMINATE]
    assert sim.records(ManagerExited) == [ManagerExited(1.0, 0)]
