"""reconfigure() and shutdown() while the manager runs, from hooks and threads."""

from __future__ import annotations

import os
import signal

from runtime_support import StartApp
from runtime_support import is_running
from runtime_support import live_worker_pids


def test_reconfigure_from_hook_scales_up_and_down(start_app: StartApp) -> None:
    app = start_app("reconfigure_app")
    first = app.wait_event("run")

    app.send_signal(signal.SIGHUP)
    app.wait_for(lambda: len(live_worker_pids(app, "probe")) == 3, what="3 probe workers")
    scaled_up = live_worker_pids(app, "probe")
    mark = len(app.events)
    app.send_signal(signal.SIGHUP)
    stopped = app.wait_events("terminate", 2, after=mark)
    dead = app.wait_events("hook_dead_worker", 2, after=mark)

    assert sorted(scaled_up) == [0, 1, 2]
    assert scaled_up[0] == first.pid
    assert sorted(e["worker_id"] for e in stopped) == [1, 2]
    assert sorted(e["worker_id"] for e in dead) == [1, 2]
    assert is_running(first.pid)
    assert not [e for e in app.events[mark:] if e.kind == "run"]


def test_reconfigure_from_thread_scales_up(start_app: StartApp) -> None:
    app = start_app("reconfigure_thread_app")

    app.wait_for(lambda: len(live_worker_pids(app, "probe")) == 2, what="2 probe workers")

    assert sorted(live_worker_pids(app, "probe")) == [0, 1]


def test_shutdown_from_dead_worker_hook(start_app: StartApp) -> None:
    app = start_app("shutdown_from_hook_app")
    app.wait_events("run", 3)
    probe = live_worker_pids(app, "probe")[0]

    os.kill(probe, signal.SIGKILL)
    status = app.wait_exit()

    assert status == 0
    restarters = [
        e["worker_id"] for e in app.events if e.kind == "terminate" and e["service"] == "restarter"
    ]
    assert sorted(restarters) == [0, 1]
    assert "Manager shutdown requested" in app.log_text()
