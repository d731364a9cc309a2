"""Programs that the test runs of the plugin tests start as managers."""

from __future__ import annotations

import subprocess
import sys
import threading

import cotyledon
from cotyledon.types import WorkerId
from cotyledon_testkit import report


class Waiter(cotyledon.Service):
    """Waits until terminated."""

    name = "waiter"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()


def two_waiters() -> None:
    """Run a manager of two Waiter workers."""
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=5)
    manager.add(Waiter, workers=2)
    manager.run()


def stray_child() -> None:
    """Start a child that ignores SIGTERM and never watches its parent,
    report its pid, then wait.

    Only a kill of the whole session ends that child: the death of this
    process does not.
    """
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, threading; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "threading.Event().wait(300)",
        ]
    )
    report("child", pid=child.pid)
    threading.Event().wait()
