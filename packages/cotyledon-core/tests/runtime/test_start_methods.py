"""Workers started by the spawn and forkserver methods of multiprocessing."""

from __future__ import annotations

import os
import signal

import pytest
from runtime_support import StartApp
from runtime_support import is_running


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
