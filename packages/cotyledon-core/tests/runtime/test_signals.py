"""The master's signals, with real processes: SIGTERM, SIGINT, SIGHUP, SIGALRM."""

from __future__ import annotations

import os
import select
import signal
import time
from pathlib import Path

from runtime_support import StartApp
from runtime_support import is_running
from runtime_support import live_worker_pids
from runtime_support import run_events

from cotyledon import WorkerEventKind


def test_sigterm_runs_hooks_then_terminates_workers(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)
    workers = [e.pid for e in run_events(app, "probe") + run_events(app, "restarter")]

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    kinds = [e.kind for e in app.events]
    assert status == 0
    assert kinds.count("terminate") == 3
    assert kinds.index("hook_terminate") < kinds.index("terminate")
    # As in cotyledon 2.x, the workers stopped by the shutdown are no dead
    # workers to the hooks.
    assert "hook_dead_worker" not in kinds
    assert not [pid for pid in workers if is_running(pid)]
    assert "master exiting with status 0" in app.log_text()


def test_sigterm_kills_worker_group_at_deadline(start_app: StartApp) -> None:
    app = start_app("stubborn_app")
    stubborn = app.wait_event("run", service="stubborn")
    app.wait_event("run", service="probe")

    started = time.monotonic()
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()
    elapsed = time.monotonic() - started

    assert status == 0
    # The service's own timeout (1 s), not the manager's (30 s), applies.
    assert elapsed < 10
    assert not is_running(stubborn.pid)
    assert not is_running(stubborn["grandchild"])
    assert "killing it and its process group with SIGKILL" in app.log_text()
    exited = app.worker_events("stubborn", kind=WorkerEventKind.EXITED)
    assert [event.exit_code for event in exited] == [-signal.SIGKILL]


def test_sigint_ends_workers_and_exits_1(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)
    workers = [e.pid for e in app.events if e.kind == "run"]

    app.send_signal(signal.SIGINT)
    status = app.wait_exit()

    assert status == 1
    assert not [pid for pid in workers if is_running(pid)]
    assert not [e for e in app.events if e.kind == "terminate"]


def test_sighup_reloads_in_place_or_restarts(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)
    probes = live_worker_pids(app, "probe")
    restarter = live_worker_pids(app, "restarter")
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    reloads = app.wait_events("reload", 2, after=mark)
    restarted = app.wait_event("run", service="restarter", after=mark)

    kinds = [e.kind for e in app.events[mark:]]
    assert kinds.index("hook_reload") < kinds.index("reload")
    assert sorted(e.pid for e in reloads) == sorted(probes.values())
    assert live_worker_pids(app, "probe") == probes
    assert restarted["worker_id"] == 0
    assert restarted.pid != restarter[0]


def test_sighup_spares_master_process_group(start_app: StartApp) -> None:
    app = start_app("basic_app")
    helper = app.wait_event("helper")
    app.wait_events("run", 3)
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    app.wait_events("reload", 2, after=mark)
    app.send_signal(signal.SIGTERM)
    app.wait_exit()

    # A sleep process dies of SIGHUP or SIGTERM: it got neither.
    assert is_running(helper["pid"])


def test_stray_sigalrm_kills_nothing(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)
    probes = live_worker_pids(app, "probe")
    mark = len(app.events)

    for pid in [app.pid, *probes.values()]:
        os.kill(pid, signal.SIGALRM)
    app.send_signal(signal.SIGHUP)
    app.wait_events("reload", 2, after=mark)

    assert app.returncode is None
    assert all(is_running(pid) for pid in probes.values())
    probe_deaths = [
        e for e in app.events[mark:] if e.kind == "hook_dead_worker" and e["service"] == "probe"
    ]
    assert not probe_deaths


def test_sigalrm_during_exit_keeps_exit_status(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)
    # A pidfd keeps the SIGALRMs on the master until it has been reaped.
    pidfd = os.pidfd_open(app.pid)
    try:
        app.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGALRM)
            except ProcessLookupError:
                break
            # Readable once the master has exited; else 1 ms between two.
            if select.select([pidfd], [], [], 0.001)[0]:
                break
    finally:
        os.close(pidfd)

    # The SIGALRMs that come after the master's loop has ended do not end
    # it by signal: it exits with the status of its graceful stop.
    assert app.wait_exit() == 0


def test_programs_get_default_sigalrm(start_app: StartApp) -> None:
    app = start_app("alarm_app")
    worker = app.wait_event("alarm", where="worker")
    app.send_signal(signal.SIGHUP)
    master = app.wait_event("alarm", where="master")
    app.send_signal(signal.SIGTERM)

    assert worker["disposition"] == "default"
    assert master["disposition"] == "default"
    assert app.wait_exit() == 0


def test_sigterm_during_reload_terminates_after(start_app: StartApp, tmp_path: Path) -> None:
    release = tmp_path / "release"
    app = start_app("slow_reload_app", env={"RELEASE_FILE": str(release)})
    app.wait_event("run")
    app.send_signal(signal.SIGHUP)
    reload_start = app.wait_event("reload_start")
    app.send_signal(signal.SIGTERM)
    app.wait_for(
        lambda: "Stopping worker slow(0)" in app.log_text(),
        what="the master to send SIGTERM to the worker",
        poll_interval=0.02,
    )
    release.touch()
    terminate = app.wait_event("terminate")
    status = app.wait_exit()

    kinds = [event.kind for event in app.events]
    assert kinds.index("reload_end") < kinds.index("terminate")
    assert reload_start["thread"] == "MainThread"
    assert terminate["thread"] == "MainThread"
    assert status == 0


def test_sigint_during_reload_waits_for_it(start_app: StartApp, tmp_path: Path) -> None:
    release = tmp_path / "release"
    app = start_app("slow_reload_app", env={"RELEASE_FILE": str(release)})
    app.wait_event("run")
    app.send_signal(signal.SIGHUP)
    reload_start = app.wait_event("reload_start")
    assert reload_start["thread"] == "MainThread"

    # The main thread reads the signal once reload() has returned.
    os.kill(reload_start.pid, signal.SIGINT)
    release.touch()
    app.wait_for(lambda: not is_running(reload_start.pid), timeout=10, what="the worker to exit")
    exited = app.wait_event("worker_exited", worker_pid=reload_start.pid)
    assert exited["exit_code"] == 1
    kinds = [event.kind for event in app.events]
    assert kinds.index("reload_end") < kinds.index("worker_exited")
    assert f"slow(0) [{reload_start.pid}] interrupted, exiting now" in app.log_text()
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


def test_reload_during_reload_completes_last(start_app: StartApp, tmp_path: Path) -> None:
    release = tmp_path / "release"
    app = start_app("stepped_reload_app", env={"RELEASE_FILE": str(release)})
    app.wait_event("run")
    app.send_signal(signal.SIGHUP)
    app.wait_event("reload_start", number=1)
    app.send_signal(signal.SIGHUP)
    app.wait_events("manager_reloading", 2)
    (tmp_path / "release-1").touch()
    # The master has read the report of the first reload, and the second
    # reload waits for its file.
    app.wait_event("worker_reloaded")
    (tmp_path / "release-2").touch()
    reloaded = app.wait_event("manager_reloaded")

    end = app.wait_event("reload_end", number=2)
    assert app.events.index(reloaded) > app.events.index(end)
    assert [event.kind for event in app.events].count("manager_reloaded") == 1


def _pending(pid: int, signum: int) -> bool:
    """Tell whether ``signum`` waits for delivery to the process ``pid``."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("ShdPnd:"):
                return bool(int(line.split()[1], 16) & (1 << (signum - 1)))
    return False


def test_queued_sighups_reload_once(start_app: StartApp, tmp_path: Path) -> None:
    release = tmp_path / "release"
    app = start_app("held_reload_hook_app", env={"RELEASE_FILE": str(release)})
    app.wait_ready()
    app.send_signal(signal.SIGHUP)
    app.wait_event("hook_reload", number=1)
    # The master runs the hook meanwhile: the signals wait for it, and it
    # reads them together. Each one is delivered before the next is sent,
    # so that the kernel does not merge them.
    for _ in range(20):
        app.send_signal(signal.SIGHUP)
        app.wait_for(
            lambda: not _pending(app.pid, signal.SIGHUP),
            what="the master to take the SIGHUP",
            poll_interval=0.005,
        )
    release.touch()
    app.wait_event("hook_reload", number=2)
    app.wait_event("manager_reloaded")

    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0
    kinds = [event.kind for event in app.events]
    assert kinds.count("hook_reload") == 2
    assert kinds.count("manager_reloading") == 2


def test_child_of_a_worker_gets_default_signals(start_app: StartApp) -> None:
    app = start_app("fork_from_run_app")
    events = app.wait_events("child_signals", 2)
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert [event["signals"] for event in events] == ["own", "own"]
    assert status == 0


def test_reload_and_terminate_may_fork(start_app: StartApp) -> None:
    app = start_app("fork_in_calls_app")
    app.wait_event("run")
    app.send_signal(signal.SIGHUP)
    reload = app.wait_event("reload")
    app.send_signal(signal.SIGTERM)
    terminate = app.wait_event("terminate")
    status = app.wait_exit()

    for call in (reload, terminate):
        assert call["process_exit"] == 0
        assert call["fork_exit"] == 0
        assert call["traced"] is True
    assert status == 0


def test_reload_child_returning_reports_nothing(start_app: StartApp) -> None:
    app = start_app("fork_returns_in_reload_app")
    app.wait_event("run")
    app.send_signal(signal.SIGHUP)
    reload = app.wait_event("reload")
    app.wait_for(lambda: "Reload complete" in app.log_text(), what="the reload to complete")
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert reload["fork_exit"] == 0
    assert "forked from worker process" not in app.log_text()
    assert status == 0
