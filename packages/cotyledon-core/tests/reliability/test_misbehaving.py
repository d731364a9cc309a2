"""Workers that misbehave are contained by the master's deadlines.

Each scenario runs with each start method. The last ones run the
misbehaving workers under the supervision policies: recycled at their
maximum age and reloaded by rolling replacement though they ignore
SIGTERM, finished by an exit status that prevents restarts, and given up
past their restart intensity.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path
from typing import Final

import pytest
from conftest import StartApp
from reliability_support import TALLY
from reliability_support import check_finished_slots
from reliability_support import check_nothing_left
from reliability_support import check_slots
from reliability_support import check_start_method
from reliability_support import is_live
from reliability_support import method_matrix
from reliability_support import read_status
from reliability_support import start_method_params
from reliability_support import wait_settled
from reliability_support import wait_settled_by_status

from cotyledon import WorkerEventKind
from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess

# The graceful shutdown timeout of the misbehaving service is 1 s; the
# master must be done well within this.
STOP_BOUND: Final = 5.0

RUNNING_MODES: Final = [
    "ignore_sigterm",
    "block_signals",
    "grandchild",
    "flood_stdout",
    "hang_in_terminate",
]

# ``misbehaving_policy_app`` reloads the misbehaving service by rolling
# replacement and finishes a slot whose worker exits 5.
ROLLING: Final = ("misbehaving",)
FINISH_STATUSES: Final = {"misbehaving": (5,)}

# Seconds the scenarios wait for the policies to act: a spawned worker
# needs a new interpreter for each start.
POLICY_TIMEOUT: Final = 60.0


def _start(
    start_app: StartApp,
    mode: str,
    start_method: str,
    app_name: str = "misbehaving_app",
    control_socket: Path | None = None,
) -> ManagerProcess:
    TALLY.scenarios.append(f"misbehaving:{mode}:{start_method}")
    return start_app(
        app_name,
        env={"RELIABILITY_MISBEHAVIOUR": mode},
        start_method=start_method,
        control_socket=control_socket,
    )


def _stop_within_bound(app: ManagerProcess) -> int:
    started = time.monotonic()
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit(timeout=STOP_BOUND * 2)
    assert time.monotonic() - started < STOP_BOUND
    return status


@pytest.mark.parametrize("start_method", start_method_params())
@pytest.mark.parametrize("mode", RUNNING_MODES)
def test_misbehaving_worker_is_contained(start_app: StartApp, mode: str, start_method: str) -> None:
    app = _start(start_app, mode, start_method)
    app.wait_ready(timeout=30)
    check_start_method(app, start_method)
    app.wait_events("run", 2)
    wait_settled(app, {"misbehaving": 2, "steady": 1})
    mark = app.mark()
    app.send_signal(signal.SIGHUP)
    app.wait_manager_event(ManagerEventKind.RELOADED, after=mark)
    mark = app.mark()
    app.kill_worker("misbehaving", 0)
    TALLY.faults += 2
    app.wait_worker_ready("misbehaving", 0, after=mark, timeout=30)
    check_slots(app)

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app)


@pytest.mark.parametrize("start_method", start_method_params())
def test_misbehaving_blocked_signals_worker_is_killed(
    start_app: StartApp, start_method: str
) -> None:
    app = start_app("block_all_signals_app", start_method=start_method)
    app.wait_ready(timeout=30)
    check_start_method(app, start_method)

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app)


@pytest.mark.parametrize("start_method", start_method_params())
def test_misbehaving_exit_in_init_backs_off(start_app: StartApp, start_method: str) -> None:
    app = _start(start_app, "exit_in_init", start_method)
    app.wait_events("worker_exited", 10, timeout=60)
    check_start_method(app, start_method)
    exits = app.worker_events("misbehaving", kind=WorkerEventKind.EXITED)
    TALLY.faults += len(exits)

    status = _stop_within_bound(app)

    assert {e.exit_code for e in exits} == {4}
    assert status == 0
    check_nothing_left(app)


@pytest.mark.parametrize("start_method", start_method_params())
@pytest.mark.parametrize("mode", ["close_fds", "dup2_fds"])
def test_misbehaving_fd_clobber_is_restarted(
    start_app: StartApp, mode: str, start_method: str
) -> None:
    """A worker that closes or overwrites the descriptors of its own loop
    either fails and is restarted on its backoff, or hangs deaf to signals
    and is killed at its stop deadline."""
    app = _start(start_app, mode, start_method)
    app.wait_events("worker_started", 3, timeout=30)
    check_start_method(app, start_method)
    wait_settled(app, {"steady": 1})
    TALLY.faults += 2

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app)


@pytest.mark.parametrize("start_method", start_method_params())
def test_misbehaving_fork_and_exit_leaves_nothing(start_app: StartApp, start_method: str) -> None:
    app = _start(start_app, "fork_and_exit", start_method)
    app.wait_events("grandchild", 6, timeout=30)
    check_start_method(app, start_method)
    grandchildren = [e["pid"] for e in app.events if e.kind == "grandchild"]
    TALLY.faults += len(grandchildren)

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app, grandchildren)


@pytest.mark.parametrize("start_method", start_method_params())
def test_misbehaving_setsid_grandchild_escapes(start_app: StartApp, start_method: str) -> None:
    """A grandchild that calls setsid leaves the worker's process group and
    the manager's session: the master kills process groups, so it cannot
    reach it, and nothing on Linux short of a cgroup or a subreaper could.
    The worker that started it is the one that must stop it."""
    app = _start(start_app, "setsid_grandchild", start_method)
    app.wait_events("grandchild", 2, timeout=30)
    escaped = [e["pid"] for e in app.events if e.kind == "grandchild"]
    try:
        check_start_method(app, start_method)
        status = _stop_within_bound(app)
        check_nothing_left(app)
        assert status == 0
        assert all(is_live(pid) for pid in escaped)
    finally:
        for pid in escaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _wait_recycled(app: ManagerProcess, after: int) -> None:
    """Wait until each misbehaving slot has had a worker stopped at its
    maximum age, checking the slots on the way."""

    def recycled() -> bool:
        check_slots(app, ROLLING)
        exits = app.worker_events("misbehaving", kind=WorkerEventKind.EXITED, after=after)
        return {e.worker_id for e in exits if e.stop_reason == "max-age"} == {0, 1}

    app.wait_for(recycled, POLICY_TIMEOUT, "both misbehaving slots to be recycled")


def _kill_live_worker(app: ManagerProcess, service: str, worker_id: int) -> None:
    """Kill the worker of a slot with SIGKILL. The policies recycle workers,
    so the one found may exit before the kill: the next one is killed then."""

    def killed() -> bool:
        try:
            app.kill_worker(service, worker_id)
        except LookupError:
            return False
        return True

    app.wait_for(
        killed, POLICY_TIMEOUT, f"a live worker {service}({worker_id}) to kill", poll_interval=0.05
    )


@pytest.mark.parametrize(("mode", "start_method"), method_matrix(RUNNING_MODES))
def test_misbehaving_worker_contained_by_policies(
    start_app: StartApp, control_socket: Path, mode: str, start_method: str
) -> None:
    app = _start(start_app, mode, start_method, "misbehaving_policy_app", control_socket)
    app.wait_ready(timeout=30)
    check_start_method(app, start_method)
    _wait_recycled(app, after=0)
    mark = app.mark()
    app.send_signal(signal.SIGHUP)
    app.wait_manager_event(ManagerEventKind.RELOADED, POLICY_TIMEOUT, after=mark)
    check_slots(app, ROLLING)
    mark = app.mark()
    _kill_live_worker(app, "misbehaving", 0)
    TALLY.faults += 3
    app.wait_worker_ready("misbehaving", 0, POLICY_TIMEOUT, after=mark)
    check_slots(app, ROLLING)

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app)


def _service_state(control_socket: Path, name: str) -> str | None:
    status = read_status(control_socket)
    if status is None:
        return None
    state: str = next(s["state"] for s in status["services"] if s["name"] == name)
    return state


@pytest.mark.parametrize("start_method", start_method_params())
def test_misbehaving_fork_and_exit_finishes(
    start_app: StartApp, control_socket: Path, start_method: str
) -> None:
    """Exit status 5 prevents restarts: both slots finish, the master kills
    what their workers left behind, and the manager goes on."""
    app = _start(start_app, "fork_and_exit", start_method, "misbehaving_policy_app", control_socket)
    app.wait_for(
        lambda: _service_state(control_socket, "misbehaving") == "finished",
        POLICY_TIMEOUT,
        "the misbehaving service to finish",
        poll_interval=0.1,
    )
    check_start_method(app, start_method)
    status = wait_settled_by_status(app, control_socket, rolling=ROLLING)
    grandchildren = [e["pid"] for e in app.events if e.kind == "grandchild"]
    TALLY.faults += len(grandchildren)
    app.wait_for(
        lambda: not any(is_live(pid) for pid in grandchildren),
        what="the grandchildren of the finished workers to be killed",
        poll_interval=0.05,
    )

    exit_status = _stop_within_bound(app)

    check_finished_slots(status, FINISH_STATUSES)
    assert len(grandchildren) == 2
    assert exit_status == 0
    check_nothing_left(app, grandchildren)


@pytest.mark.parametrize("start_method", start_method_params())
def test_misbehaving_exit_in_init_is_given_up(
    start_app: StartApp, control_socket: Path, start_method: str
) -> None:
    """A service whose workers exit in ``__init__`` is given up at its
    fourth unrequested exit (3 restarts in 60 s). The manager goes on."""
    app = _start(start_app, "exit_in_init", start_method, "misbehaving_policy_app", control_socket)
    app.wait_manager_event(ManagerEventKind.GIVE_UP, POLICY_TIMEOUT)
    check_start_method(app, start_method)
    status = wait_settled_by_status(app, control_socket, rolling=ROLLING)
    failures = [
        e
        for e in app.worker_events("misbehaving", kind=WorkerEventKind.EXITED)
        if e.stop_reason is None
    ]
    TALLY.faults += len(failures)

    exit_status = _stop_within_bound(app)

    states = {service["name"]: service["state"] for service in status["services"]}
    assert states == {"misbehaving": "given-up", "announcing": "running"}
    assert [e.exit_code for e in failures] == [4, 4, 4, 4]
    assert exit_status == 0
    check_nothing_left(app)
