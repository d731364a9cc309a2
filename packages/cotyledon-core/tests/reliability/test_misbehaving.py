"""Workers that misbehave are contained by the master's deadlines."""

from __future__ import annotations

import contextlib
import os
import signal
import time

import pytest
from conftest import StartApp
from reliability_support import TALLY
from reliability_support import check_nothing_left
from reliability_support import check_slots
from reliability_support import is_live
from reliability_support import wait_settled

from cotyledon import WorkerEventKind
from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess

# The graceful shutdown timeout of the misbehaving service is 1 s; the
# master must be done well within this.
STOP_BOUND = 5.0

RUNNING_MODES = [
    "ignore_sigterm",
    "block_signals",
    "grandchild",
    "flood_stdout",
    "hang_in_terminate",
]


def _start(start_app: StartApp, mode: str) -> ManagerProcess:
    TALLY.scenarios.append(f"misbehaving:{mode}")
    return start_app("misbehaving_app", env={"RELIABILITY_MISBEHAVIOUR": mode})


def _stop_within_bound(app: ManagerProcess) -> int:
    started = time.monotonic()
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit(timeout=STOP_BOUND * 2)
    assert time.monotonic() - started < STOP_BOUND
    return status


@pytest.mark.parametrize("mode", RUNNING_MODES)
def test_misbehaving_worker_is_contained(start_app: StartApp, mode: str) -> None:
    app = _start(start_app, mode)
    app.wait_ready()
    app.wait_events("run", 2)
    wait_settled(app, {"misbehaving": 2, "steady": 1})
    mark = app.mark()
    app.send_signal(signal.SIGHUP)
    app.wait_manager_event(ManagerEventKind.RELOADED, after=mark)
    mark = app.mark()
    app.kill_worker("misbehaving", 0)
    TALLY.faults += 2
    app.wait_worker_ready("misbehaving", 0, after=mark)
    check_slots(app)

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app)


def test_misbehaving_blocked_signals_worker_is_killed(start_app: StartApp) -> None:
    app = start_app("block_all_signals_app")
    app.wait_ready()

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app)


def test_misbehaving_exit_in_init_backs_off(start_app: StartApp) -> None:
    app = _start(start_app, "exit_in_init")
    app.wait_events("worker_exited", 10)
    exits = app.worker_events("misbehaving", kind=WorkerEventKind.EXITED)
    TALLY.faults += len(exits)

    status = _stop_within_bound(app)

    assert {e.exit_code for e in exits} == {4}
    assert status == 0
    check_nothing_left(app)


@pytest.mark.parametrize("mode", ["close_fds", "dup2_fds"])
def test_misbehaving_fd_clobber_is_restarted(start_app: StartApp, mode: str) -> None:
    """A worker that closes or overwrites the descriptors of its own loop
    either fails and is restarted on its backoff, or hangs deaf to signals
    and is killed at its stop deadline."""
    app = _start(start_app, mode)
    app.wait_events("worker_started", 3)
    wait_settled(app, {"steady": 1})
    TALLY.faults += 2

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app)


def test_misbehaving_fork_and_exit_leaves_nothing(start_app: StartApp) -> None:
    app = _start(start_app, "fork_and_exit")
    app.wait_events("grandchild", 6)
    grandchildren = [e["pid"] for e in app.events if e.kind == "grandchild"]
    TALLY.faults += len(grandchildren)

    status = _stop_within_bound(app)

    assert status == 0
    check_nothing_left(app, grandchildren)


def test_misbehaving_setsid_grandchild_escapes(start_app: StartApp) -> None:
    """A grandchild that calls setsid leaves the worker's process group and
    the manager's session: the master kills process groups, so it cannot
    reach it, and nothing on Linux short of a cgroup or a subreaper could.
    The worker that started it is the one that must stop it."""
    app = _start(start_app, "setsid_grandchild")
    app.wait_events("grandchild", 2)
    escaped = [e["pid"] for e in app.events if e.kind == "grandchild"]
    try:
        status = _stop_within_bound(app)
        check_nothing_left(app)
        assert status == 0
        assert all(is_live(pid) for pid in escaped)
    finally:
        for pid in escaped:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
