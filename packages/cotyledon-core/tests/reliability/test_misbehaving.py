"""Workers that misbehave are contained by the master's deadlines.

Each scenario runs with each start method.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Final

import pytest
from conftest import StartApp
from reliability_support import TALLY
from reliability_support import check_nothing_left
from reliability_support import check_slots
from reliability_support import check_start_method
from reliability_support import is_live
from reliability_support import start_method_params
from reliability_support import wait_settled

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


def _start(start_app: StartApp, mode: str, start_method: str) -> ManagerProcess:
    TALLY.scenarios.append(f"misbehaving:{mode}:{start_method}")
    return start_app(
        "misbehaving_app", env={"RELIABILITY_MISBEHAVIOUR": mode}, start_method=start_method
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
