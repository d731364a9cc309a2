"""Lifecycle listeners in a real master, seen through the harness's listener."""

from __future__ import annotations

import signal

from runtime_support import StartApp


def test_manager_ready_follows_every_worker(start_app: StartApp) -> None:
    app = start_app("basic_app")

    ready = app.wait_ready()

    before = app.events[: ready.index]
    assert sum(1 for e in before if e.kind == "worker_ready") == 3
    assert ready.summary == "probe 2/2, restarter 1/1"
    assert sorted(app.live_workers()) == [("probe", 0), ("probe", 1), ("restarter", 0)]


def test_reload_reports_each_step(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_ready()
    old_restarter = app.live_workers("restarter")[("restarter", 0)]
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    reloaded = app.wait_event("manager_reloaded", after=mark)

    window = app.events[mark : app.events.index(reloaded)]
    # Only the listener's events: the services report too, at their pace.
    kinds = [e.kind for e in window if e.kind.startswith(("manager_", "worker_"))]
    assert kinds[0] == "manager_reloading"
    assert kinds.count("worker_reloaded") == 2
    assert "worker_exited" in kinds
    assert app.live_workers("restarter")[("restarter", 0)] != old_restarter


def test_stop_reports_stopping_and_exits(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_ready()

    app.send_signal(signal.SIGTERM)
    app.wait_exit()

    exits = [e for e in app.events if e.kind == "worker_exited"]
    assert [e.kind for e in app.events].count("manager_stopping") == 1
    assert len(exits) == 3
    assert {e["stop_reason"] for e in exits} == {"shutdown"}
    assert {e["exit_code"] for e in exits} == {0}
    assert app.live_workers() == {}


def test_signal_worker_by_slot(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_ready()

    pid = app.signal_worker("probe", 1, signal.SIGKILL)
    exited = app.wait_event("worker_exited", worker_pid=pid)
    app.wait_for(lambda: ("probe", 1) in app.live_workers(), what="probe(1) to be back")

    assert exited["exit_code"] == -signal.SIGKILL
    assert exited["stop_reason"] is None
    assert app.live_workers()[("probe", 1)] != pid


def test_failing_listener_does_not_stop_manager(start_app: StartApp) -> None:
    app = start_app("listeners_app")

    app.wait_ready()
    ticks = app.wait_events("tick", 3)
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert status == 0
    assert "RuntimeError: listener fails" in app.log_text()
    assert ticks[-1]["summary"] == "probe 2/2, restarter 1/1"


def test_listener_discovery_can_be_disabled(start_app: StartApp) -> None:
    app = start_app("no_discovery_app")
    app.wait_event("run")

    app.send_signal(signal.SIGTERM)
    app.wait_exit()

    assert not [e for e in app.events if e.kind.startswith(("manager_", "worker_"))]


def test_distant_tick_keeps_master_running(start_app: StartApp) -> None:
    app = start_app("distant_tick_app")
    app.wait_ready()

    # The master goes on waiting for events: a worker killed comes back.
    pid = app.signal_worker("probe", 0, signal.SIGKILL)
    app.wait_event("worker_exited", worker_pid=pid)
    app.wait_for(lambda: ("probe", 0) in app.live_workers(), what="probe(0) to be back")
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0
