"""Worker deaths, exit statuses, respawns and backoff, with real processes."""

from __future__ import annotations

import itertools
import os
import signal
import time

from runtime_support import StartApp
from runtime_support import is_running
from runtime_support import live_worker_pids
from runtime_support import run_events

from cotyledon import WorkerEventKind
from cotyledon_testkit import ProbeEvent


def test_killed_worker_respawns_with_same_id(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)
    victim = live_worker_pids(app, "probe")[1]
    mark = len(app.events)

    os.kill(victim, signal.SIGKILL)
    dead = app.wait_event("hook_dead_worker", after=mark)
    replacement = app.wait_event("run", after=mark, service="probe")

    assert dead["service"] == "probe"
    assert dead["worker_id"] == 1
    assert dead["code"] == -signal.SIGKILL
    assert replacement["worker_id"] == 1
    assert replacement.pid != victim
    assert "was killed by SIGKILL unexpectedly; restarting it now" in app.log_text()


def test_new_worker_hook_runs_in_worker(start_app: StartApp) -> None:
    app = start_app("basic_app")

    hooks = app.wait_events("hook_new_worker", 3)
    runs = app.wait_events("run", 3)

    assert sorted(e.pid for e in hooks) == sorted(e.pid for e in runs)
    assert app.pid not in {e.pid for e in hooks}


def test_crash_loop_backs_off_alone(start_app: StartApp) -> None:
    app = start_app("crash_app")
    probe = app.wait_event("run", service="probe")

    crashes = app.wait_for(
        lambda: run_events(app, "crasher") if len(run_events(app, "crasher")) >= 5 else None,
        what="5 runs of the crashing service",
    )
    started = time.monotonic()
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    gaps = [later.time - earlier.time for earlier, later in itertools.pairwise(crashes)]
    # Restarts of the slot: immediate, then 0.1 s, 0.2 s, 0.4 s, each +-10 %.
    assert gaps[1] >= 0.09
    assert gaps[2] >= 0.18
    assert gaps[3] >= 0.36
    assert live_worker_pids(app, "probe") == {0: probe.pid}
    assert status == 0
    assert time.monotonic() - started < 5
    assert "run() raised" in app.log_text()


def test_exit_statuses_reach_dead_worker_hook(start_app: StartApp) -> None:
    app = start_app("exit_status_app")

    exiter = app.wait_event("hook_dead_worker", service="exiter")
    app.wait_event("run", service="failing-terminate")
    app.send_signal(signal.SIGTERM)
    app.wait_exit()

    failing = app.worker_events("failing-terminate", kind=WorkerEventKind.EXITED)
    assert exiter["code"] == 3
    # Stopped by the shutdown: the listeners hear of the status, the hooks
    # do not.
    assert [e.exit_code for e in failing] == [1]
    assert not [e for e in app.events if e.kind == "hook_dead_worker" and e["service"] == "failing"]
    assert "terminate() raised" in app.log_text()


def test_exiting_worker_flushes_its_output(start_app: StartApp) -> None:
    app = start_app("exit_status_app", env={"PYTHONUNBUFFERED": ""})

    run = app.wait_event("run", service="exiter")
    app.wait_event("hook_dead_worker", service="exiter")

    assert f"exiter output {run.pid} without newline" in app.log_text()


def test_workers_skip_master_atexit_handlers(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)
    os.kill(live_worker_pids(app, "probe")[0], signal.SIGTERM)
    app.wait_event("hook_dead_worker")

    app.send_signal(signal.SIGTERM)
    app.wait_exit()

    at_exit = [e.pid for e in app.events if e.kind == "atexit"]
    assert at_exit == [app.pid]


def test_master_death_ends_every_worker(start_app: StartApp) -> None:
    app = start_app("fd_holder_app")
    holder = app.wait_event("helper")
    runs = app.wait_events("run", 2)

    os.kill(app.pid, signal.SIGKILL)
    terminated = app.wait_events("terminate", 2, timeout=5)
    app.wait_for(
        lambda: not any(is_running(e.pid) for e in runs), timeout=5, what="the workers to exit"
    )

    assert is_running(holder["pid"])
    assert sorted(e.pid for e in terminated) == sorted(e.pid for e in runs)
    # Noticed at once through the pidfd: well within a second.
    latency = max(t.time for t in terminated) - _kill_time(app.events)
    assert latency < 1.0


def _kill_time(events: list[ProbeEvent]) -> float:
    # The master was killed after the last run event; terminate events come
    # after its death, so the last run event bounds the kill time from below.
    return max(e.time for e in events if e.kind == "run")


def test_master_death_spares_workers_under_default_sigpipe(start_app: StartApp) -> None:
    # Each heartbeat after the master's death goes to a pipe that the
    # master read: without a reader left, the write would raise SIGPIPE and
    # kill the worker before its terminate() returns.
    app = start_app("sigpipe_default_app")
    runs = app.wait_events("run", 2)

    os.kill(app.pid, signal.SIGKILL)
    terminated = app.wait_events("terminated", 2, timeout=10)

    assert sorted(e.pid for e in terminated) == sorted(e.pid for e in runs)
    app.wait_for(
        lambda: not any(is_running(e.pid) for e in runs), timeout=5, what="the workers to exit"
    )
