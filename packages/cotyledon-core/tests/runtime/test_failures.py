"""Failures around the workers: raising hooks, early signals, a dead master."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from runtime_support import StartApp
from runtime_support import cpu_seconds
from runtime_support import is_running
from runtime_support import read_group_members


def test_raising_hooks_are_logged_and_skipped(start_app: StartApp) -> None:
    app = start_app("failing_hooks_app")
    first = app.wait_event("run")

    app.send_signal(signal.SIGHUP)
    app.wait_event("hook_reload")
    os.kill(first.pid, signal.SIGKILL)
    app.wait_event("hook_dead_worker")
    replacement = app.wait_event("run", after=app.events.index(first) + 1)
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    log = app.log_text()
    assert "RuntimeError: reload hook fails" in log
    assert "RuntimeError: dead worker hook fails" in log
    assert "RuntimeError: terminate hook fails" in log
    assert replacement.pid != first.pid
    assert [e.kind for e in app.events].count("hook_terminate") == 1
    assert status == 0


def test_master_hook_sys_exit_is_logged(start_app: StartApp) -> None:
    app = start_app("exiting_hooks_app")
    first = app.wait_event("run")

    app.send_signal(signal.SIGHUP)
    app.wait_event("hook_reload")
    reloaded = app.wait_event("reload")
    app.send_signal(signal.SIGTERM)
    terminated = app.wait_event("terminate")
    status = app.wait_exit()

    log = app.log_text()
    assert "SystemExit: 4" in log
    assert "SystemExit: 5" in log
    assert [e.kind for e in app.events].count("hook_terminate") == 1
    assert reloaded.pid == first.pid
    assert terminated.pid == first.pid
    assert status == 0


def test_sigterm_during_startup_leaves_nothing(start_app: StartApp) -> None:
    app = start_app("many_workers_app")
    app.wait_event("manager_ready")

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert status == 0
    assert not [p for p in app.session_processes() if p.state != "Z"]


def test_sigint_storm_during_startup(start_app: StartApp) -> None:
    app = start_app("many_workers_app")
    app.wait_event("manager_ready")

    for _ in range(20):
        app.send_signal(signal.SIGINT)
    status = app.wait_exit()

    assert status == 1
    assert not [p for p in app.session_processes() if p.state != "Z"]


def test_master_death_bounds_hanging_terminate(start_app: StartApp) -> None:
    app = start_app("stubborn_app")
    stubborn = app.wait_event("run", service="stubborn")
    probe = app.wait_event("run", service="probe")

    os.kill(app.pid, signal.SIGKILL)
    app.wait_event("terminate", service="stubborn", timeout=5)
    cpu_at_terminate = cpu_seconds(stubborn.pid)
    assert cpu_at_terminate is not None
    cpu_seen = [cpu_at_terminate]

    def exited() -> bool:
        cpu = cpu_seconds(stubborn.pid)
        if cpu is not None and is_running(stubborn.pid):
            cpu_seen.append(cpu)
            return False
        return True

    # Without its master, the worker enforces its own graceful timeout (1 s),
    # and sleeps until then: the dead master's pidfd stays readable, and
    # waiting on it again would spin.
    app.wait_for(exited, timeout=10, what="the stubborn worker to exit")
    assert cpu_seen[-1] - cpu_at_terminate < 0.25, cpu_seen
    app.wait_for(lambda: not is_running(probe.pid), timeout=5, what="the probe worker to exit")
    assert "did not end within 1.0 s after the master died" in app.log_text()


def test_master_death_ends_stuck_constructor(start_app: StartApp) -> None:
    app = start_app("unfinished_app")
    init = app.wait_event("init")

    os.kill(app.pid, signal.SIGKILL)
    # No service to terminate yet: the worker ends at its graceful
    # shutdown timeout (1 s).
    app.wait_for(lambda: not is_running(init.pid), timeout=10, what="the worker to exit")
    assert "did not end within 1.0 s after the master died" in app.log_text()


def test_orphan_failing_constructor_ends_helpers(start_app: StartApp, tmp_path: Path) -> None:
    release = tmp_path / "release"
    app = start_app("failing_late_init_app", env={"RELEASE_FILE": str(release)})
    init = app.wait_event("init")

    os.kill(app.pid, signal.SIGKILL)
    app.wait_for(
        lambda: "master process" in app.log_text(), what="the worker to notice the master's death"
    )
    release.touch()

    # The worker sends SIGTERM to its group as it fails, long before its
    # graceful shutdown timeout (30 s).
    app.wait_for(lambda: not is_running(init.pid), timeout=10, what="the worker to exit")
    app.wait_for(lambda: not is_running(init["helper"]), timeout=10, what="the helper to end")
    assert "failed to start: its service raised" in app.log_text()


def test_master_death_bounds_hanging_reload(start_app: StartApp, tmp_path: Path) -> None:
    app = start_app("brief_slow_reload_app", env={"RELEASE_FILE": str(tmp_path / "release")})
    app.wait_event("run")
    app.send_signal(signal.SIGHUP)
    reload_start = app.wait_event("reload_start")

    os.kill(app.pid, signal.SIGKILL)
    # reload() never returns, so terminate() never starts. The master
    # watch still ends the worker at its graceful shutdown timeout (1 s).
    app.wait_for(lambda: not is_running(reload_start.pid), timeout=10, what="the worker to exit")
    log = app.log_text()
    assert f"master process {app.pid} is gone; terminating" in log
    assert "did not end within 1.0 s after the master died" in log
    assert not [e for e in app.events if e.kind in ("reload_end", "terminate")]


def test_master_death_bounds_blocked_stderr(start_app: StartApp) -> None:
    app = start_app("blocked_stderr_app")
    run = app.wait_event("run")

    os.kill(app.pid, signal.SIGKILL)
    # Every log call of the worker blocks on its full stderr, yet the
    # master watch kills it at its graceful shutdown timeout (1 s), after
    # waiting up to 1 s for its log line.
    app.wait_for(lambda: not is_running(run.pid), timeout=10, what="the worker to exit")


def test_sigterm_from_elsewhere_is_bounded(start_app: StartApp) -> None:
    app = start_app("stubborn_app")
    stubborn = app.wait_event("run", service="stubborn")

    # Not from the master: the worker's graceful timeout (1 s) bounds it all
    # the same, and a new worker takes the slot.
    os.kill(stubborn.pid, signal.SIGTERM)
    app.wait_event("terminate", service="stubborn")
    exited = app.wait_event("worker_exited", worker_pid=stubborn.pid, timeout=10)
    replacement = app.wait_event("run", service="stubborn", after=app.events.index(exited))

    assert exited["exit_code"] == -9
    assert replacement.pid != stubborn.pid
    app.wait_for(
        lambda: not is_running(stubborn["grandchild"]), what="the worker's child to be gone"
    )


def test_raising_reload_exits_worker_with_1(start_app: StartApp) -> None:
    app = start_app("failing_reload_app")
    first = app.wait_event("run")

    app.send_signal(signal.SIGHUP)
    dead = app.wait_event("hook_dead_worker")
    replacement = app.wait_event("run", after=app.events.index(dead))

    assert dead["code"] == 1
    assert replacement.pid != first.pid
    assert "reload() raised" in app.log_text()


def test_processes_left_by_worker_get_sigterm_first(start_app: StartApp, tmp_path: Path) -> None:
    app = start_app("helpers_app", env={"HELPER_DIR": str(tmp_path)})
    run = app.wait_event("run")
    helpers = run["helpers"]

    os.kill(run.pid, signal.SIGKILL)

    # The helper that handles SIGTERM cleans up; the one that ignores it
    # is killed once the graceful shutdown timeout (1 s) has passed.
    app.wait_for(
        (tmp_path / "cleans-up.done").exists,
        what="the helper's clean-up on SIGTERM",
        poll_interval=0.02,
    )
    app.wait_for(
        lambda: not is_running(helpers["ignores"]),
        timeout=10,
        what="the other helper to be killed",
        poll_interval=0.02,
    )
    assert "Killed the processes left in the group of worker" in app.log_text()
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


def test_orphaned_worker_ends_its_helpers(start_app: StartApp, tmp_path: Path) -> None:
    app = start_app("helpers_app", env={"HELPER_DIR": str(tmp_path)})
    run = app.wait_event("run")
    helpers = run["helpers"]

    os.kill(app.pid, signal.SIGKILL)

    # Without its master, the worker sends SIGTERM to its group as it ends.
    # It waits for its helpers, and kills the group at its graceful
    # shutdown timeout (1 s).
    app.wait_for(
        (tmp_path / "cleans-up.done").exists,
        what="the helper's clean-up on SIGTERM",
        poll_interval=0.02,
    )
    pids = [run.pid, helpers["ignores"], helpers["cleans-up"]]
    app.wait_for(
        lambda: not any(is_running(pid) for pid in pids),
        timeout=10,
        what="the worker and its helpers to end",
    )
    assert "killing it and its process group with SIGKILL" in app.log_text()


def test_orphan_skips_child_in_own_session(start_app: StartApp) -> None:
    app = start_app("session_helper_app")
    run = app.wait_event("run")
    helper = run["helper"]
    try:
        os.kill(app.pid, signal.SIGKILL)
        # The helper is in a session of its own and got no SIGTERM: the
        # worker ends once terminate() has returned, long before its
        # graceful shutdown timeout (30 s).
        app.wait_event("terminate", timeout=5)
        app.wait_for(lambda: not is_running(run.pid), timeout=10, what="the worker to exit")
        assert "did not end within" not in app.log_text()
        assert is_running(helper)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(helper, signal.SIGKILL)


def test_orphan_without_deadline_kills_group(start_app: StartApp, tmp_path: Path) -> None:
    app = start_app("helpers_app", env={"HELPER_DIR": str(tmp_path), "HELPER_TIMEOUT": "0"})
    run = app.wait_event("run")
    pids = [run.pid, *run["helpers"].values()]

    os.kill(app.pid, signal.SIGKILL)

    # With no deadline (timeout 0), what is left of the group gets SIGKILL
    # as the worker exits, as at the exit of a master.
    app.wait_for(
        lambda: not any(is_running(pid) for pid in pids),
        timeout=10,
        what="the worker and its helpers to end",
    )


def test_orphaned_worker_waits_for_group(start_app: StartApp, tmp_path: Path) -> None:
    app = start_app("detached_helper_app", env={"HELPER_DIR": str(tmp_path)})
    run = app.wait_event("run")
    helper = read_group_members(run.pid) - {run.pid}
    assert len(helper) == 1

    os.kill(app.pid, signal.SIGKILL)

    # The helper ignores SIGTERM and is not the worker's child: the worker
    # stays until its graceful shutdown timeout (1 s), then kills its group.
    app.wait_for(
        lambda: not any(is_running(pid) for pid in (run.pid, *helper)),
        timeout=10,
        what="the worker and its helper to end",
    )
    assert "killing it and its process group with SIGKILL" in app.log_text()


def test_exiting_master_waits_for_worker_helpers(start_app: StartApp, tmp_path: Path) -> None:
    app = start_app("helpers_app", env={"HELPER_DIR": str(tmp_path)})
    helpers = app.wait_event("run")["helpers"]

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    # The master exits once the helper has cleaned up, and the other one
    # has been killed at the end of the graceful shutdown timeout.
    assert status == 0
    assert (tmp_path / "cleans-up.done").exists()
    assert not is_running(helpers["ignores"])
    assert "Killed the processes left in the group of worker" in app.log_text()


@pytest.mark.parametrize(
    ("timeout", "stop"),
    [("30", signal.SIGINT), ("0", signal.SIGTERM)],
    ids=["sigint", "no-deadline"],
)
def test_exiting_master_kills_helpers_at_once(
    start_app: StartApp, tmp_path: Path, timeout: str, stop: signal.Signals
) -> None:
    # After SIGINT, or with no deadline (timeout 0), the master does not
    # wait for a helper that ignores SIGTERM.
    app = start_app("helpers_app", env={"HELPER_DIR": str(tmp_path), "HELPER_TIMEOUT": timeout})
    helpers = app.wait_event("run")["helpers"]

    app.send_signal(stop)
    app.wait_exit(timeout=10)

    # The master's SIGKILL takes effect after its exit, but soon after.
    app.wait_for(
        lambda: not is_running(helpers["ignores"]),
        timeout=5,
        what="the helper that ignores SIGTERM to be gone",
        poll_interval=0.02,
    )
