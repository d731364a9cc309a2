"""Workers started by the spawn and forkserver methods of multiprocessing."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

import pytest
from runtime_support import StartApp
from runtime_support import is_running

from cotyledon import WorkerEventKind
from cotyledon_testkit import ManagerEventKind


@pytest.mark.parametrize("app_name", ["spawn_app", "forkserver_app"])
def test_start_method_supervises_workers(start_app: StartApp, app_name: str) -> None:
    app = start_app(app_name)
    runs = app.wait_events("run", 2, timeout=30)
    victim = runs[0]

    signal_sent = len(app.events)
    os.kill(victim.pid, signal.SIGKILL)
    replacement = app.wait_event("run", after=signal_sent, worker_id=victim["worker_id"])
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert replacement.pid != victim.pid
    assert status == 0
    assert not is_running(replacement.pid)


# The service's module takes 2 s to import in a worker, so that the SIGHUP
# reaches a spawned worker before it has installed its handlers: held
# blocked until then, it must not kill the worker.
@pytest.mark.parametrize(
    "method",
    ["fork", "spawn", "forkserver"],
)
def test_start_method_reload_spares_starting_worker(start_app: StartApp, method: str) -> None:
    app = start_app("slow_start_app", env={"START_METHOD": method})
    app.wait_event("worker_started")

    app.send_signal(signal.SIGHUP)
    app.wait_manager_event(ManagerEventKind.RELOADED, timeout=30)
    app.wait_event("run", timeout=30)
    exits = app.worker_events(kind=WorkerEventKind.EXITED)
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert [event.exit_code for event in exits] == []
    assert status == 0


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_worker_is_multiprocessing_current_process(start_app: StartApp, method: str) -> None:
    app = start_app("process_identity_app", env={"START_METHOD": method})
    runs = app.wait_events("run", 2, timeout=30)
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert status == 0
    assert app.wait_event("master")["name"] == "MainProcess"
    for run in sorted(runs, key=lambda run: run["worker_id"]):
        assert run["name"] == f"identity-{run['worker_id']}"
        assert run["pid"] == run.pid
        assert run["alive"] is True
        assert run["parent_pid"] == app.pid
        assert run["parent_name"] == "MainProcess"
        assert run["parent_alive"] is True
        assert run["grandchild_parent"] == run.pid
        assert run["grandchild_exit"] == 0


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_reports_need_no_thread_while_master_stalls(
    start_app: StartApp, method: str, tmp_path: Path
) -> None:
    # The worker sends 30 reports while the master is stopped: the channel
    # has room for them all, with no thread to send them later.
    go = tmp_path / "go"
    app = start_app("burst_heartbeat_app", env={"START_METHOD": method, "GO_FILE": str(go)})
    app.wait_event("run", timeout=30)
    app.send_signal(signal.SIGSTOP)
    try:
        go.touch()
        threads = app.wait_event("threads")
    finally:
        app.send_signal(signal.SIGCONT)

    assert threads["names"] == ["MainThread", "cotyledon-run", "cotyledon-watch"]
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


# The master catches SIGALRM, so exec gives a spawned worker its default
# action. It stays blocked until the worker's handlers are in place, so a
# stray one kills neither the worker nor the fork server or resource tracker.
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_sigalrm_spares_starting_worker(start_app: StartApp, method: str) -> None:
    app = start_app("slow_start_app", env={"START_METHOD": method})
    app.wait_event("worker_started")

    for process in app.session_processes():
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGALRM)
    app.wait_event("run", timeout=30)
    exits = app.worker_events(kind=WorkerEventKind.EXITED)
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert [event.exit_code for event in exits] == []
    assert status == 0
