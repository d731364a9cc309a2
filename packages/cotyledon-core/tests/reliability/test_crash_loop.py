"""Thousands of worker deaths in a row, on a shortened backoff.

Each scenario runs with each start method. The last one runs the crash
loop under the supervision policies, until the restart intensity of the
crashing service gives it up.
"""

from __future__ import annotations

import itertools
import signal
from pathlib import Path
from typing import Final

import pytest
from conftest import StartApp
from reliability_support import TALLY
from reliability_support import check_nothing_left
from reliability_support import check_resources_flat
from reliability_support import check_slots
from reliability_support import check_start_method
from reliability_support import cpu_seconds
from reliability_support import master_resources
from reliability_support import record_restarts
from reliability_support import scaled
from reliability_support import start_method_params
from reliability_support import wait_settled
from reliability_support import wait_settled_by_status

from cotyledon import WorkerEventKind
from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess

# A spawned worker starts a new interpreter and a forkserver one imports
# the service's modules, so each of their deaths takes far longer than a
# forked worker's: their runs have fewer deaths.
DEATHS: Final = {
    "fork": scaled(300, 10_000),
    "spawn": scaled(20, 400),
    "forkserver": scaled(30, 1_000),
}
# The restart intensity of the crashers under the policies: the service is
# given up at the next death.
MAX_RESTARTS: Final = {
    "fork": scaled(300, 2_000),
    "spawn": scaled(20, 200),
    "forkserver": scaled(30, 400),
}
WARM_UP: Final = {"fork": 50, "spawn": 5, "forkserver": 10}
# The lowest rate of deaths per second that the wait for them allows. A
# soak run on a 2-core machine under a load average of 8 to 20 saw fewer
# than 5 forkserver deaths a second.
DEATH_RATE: Final = {"fork": 20, "spawn": 2, "forkserver": 3}
# The backoff test's policy: 1 ms, doubling, up to 50 ms.
BACKOFF_CAP: Final = 0.05
# Master CPU per death: a fork (or the start of a process through spawn
# or the fork server), a reap and a few log lines.
CPU_PER_DEATH: Final = 0.01


def _crasher_exits(app: ManagerProcess) -> int:
    return len(app.worker_events("crasher", kind=WorkerEventKind.EXITED))


def _wait_deaths(app: ManagerProcess, deaths: int, start_method: str) -> None:
    """Wait for ``deaths`` exits of the crashers, checking the slots on the way."""

    def enough() -> bool:
        check_slots(app)
        return _crasher_exits(app) >= deaths

    timeout = max(60, deaths / DEATH_RATE[start_method])
    app.wait_for(enough, timeout=timeout, what=f"{deaths} deaths", poll_interval=0.2)


@pytest.mark.parametrize("start_method", start_method_params())
def test_crash_loop_keeps_invariants_and_backoff(start_app: StartApp, start_method: str) -> None:
    target_deaths, warm_up = DEATHS[start_method], WARM_UP[start_method]
    app = start_app("crash_loop_app", start_method=start_method)
    app.wait_event("worker_exited", timeout=30, service="crasher")
    check_start_method(app, start_method)
    _wait_deaths(app, warm_up, start_method)
    warm = master_resources(app.pid)
    check_slots(app)

    _wait_deaths(app, target_deaths, start_method)
    now = master_resources(app.pid)
    deaths = _crasher_exits(app)
    TALLY.faults += deaths
    wait_settled(app, {"steady": 1})
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()
    record_restarts(app)

    check_resources_flat(warm, now, workers=5)
    cpu_per_death = cpu_seconds(now.cpu_ticks - warm.cpu_ticks) / (deaths - warm_up)
    assert cpu_per_death < CPU_PER_DEATH
    assert status == 0
    check_nothing_left(app)


@pytest.mark.parametrize(
    "start_method",
    start_method_params(
        fork_only=(
            "the backoff is paced by the core whatever the start method, and a "
            "spawned worker takes longer to start than the capped delay, so the "
            "check would pass without any backoff"
        )
    ),
)
def test_crash_loop_restarts_keep_backoff(start_app: StartApp, start_method: str) -> None:
    env = {"RELIABILITY_WORKERS": "1", "RELIABILITY_MAX_DELAY": str(BACKOFF_CAP)}
    app = start_app("crash_loop_app", env=env, start_method=start_method)
    app.wait_for(
        lambda: len(app.worker_events("crasher", kind=WorkerEventKind.EXITED)) >= 40,
        60,
        "40 deaths",
    )
    app.send_signal(signal.SIGTERM)
    app.wait_exit()
    starts = [e.time for e in app.worker_events("crasher", kind=WorkerEventKind.STARTED)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # From the tenth death on, every restart waits the capped delay, less
    # its jitter. Both times are read by the master, which handles a
    # worker's exit only after it has reported that worker's start, so the
    # gap between two starts is at least the delay, whatever the load.
    assert min(gaps[10:]) >= BACKOFF_CAP * 0.9
    check_nothing_left(app)


@pytest.mark.parametrize("start_method", start_method_params())
def test_crash_loop_with_policies_gives_up(
    start_app: StartApp, control_socket: Path, start_method: str
) -> None:
    """The crashers restart on failure until their service has restarted
    ``MAX_RESTARTS`` times, and the next death gives the service up. The
    manager goes on, and restarts ``never-ready`` at each missed startup
    timeout."""
    limit, warm_up = MAX_RESTARTS[start_method], WARM_UP[start_method]
    env = {"RELIABILITY_MAX_RESTARTS": str(limit)}
    app = start_app(
        "crash_loop_policy_app", env=env, start_method=start_method, control_socket=control_socket
    )
    app.wait_event("worker_exited", timeout=30, service="crasher")
    check_start_method(app, start_method)
    _wait_deaths(app, warm_up, start_method)
    warm = master_resources(app.pid)

    _wait_deaths(app, limit + 1, start_method)
    app.wait_manager_event(ManagerEventKind.GIVE_UP)
    now = master_resources(app.pid)
    status = wait_settled_by_status(app, control_socket, unready=("never-ready",))
    deaths = app.restarts("crasher")
    timeouts = app.worker_events("never-ready", kind=WorkerEventKind.EXITED)
    TALLY.faults += deaths + len(timeouts)
    app.send_signal(signal.SIGTERM)
    exit_status = app.wait_exit()
    record_restarts(app)

    states = {service["name"]: service["state"] for service in status["services"]}
    assert states == {"crasher": "given-up", "never-ready": "running", "announcing": "running"}
    assert deaths == limit + 1
    assert {e.stop_reason for e in timeouts} <= {"startup-timeout", "shutdown"}
    assert any(e.stop_reason == "startup-timeout" for e in timeouts)
    check_resources_flat(warm, now, workers=5)
    cpu = cpu_seconds(now.cpu_ticks - warm.cpu_ticks) / (deaths - warm_up + len(timeouts))
    assert cpu < CPU_PER_DEATH
    assert exit_status == 0
    check_nothing_left(app)
