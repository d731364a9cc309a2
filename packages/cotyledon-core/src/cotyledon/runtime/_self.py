"""Requests a worker makes of itself, and reports it sends to its master.

``Service`` reaches the worker it runs in through these functions only, so
that the facade needs nothing of the worker loop. Outside a worker process
(a service built by a unit test, say) the reports do nothing.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import final

from cotyledon.core import WorkerReport

HEARTBEATS_PER_TIMEOUT = 4
"""A worker sends at most this many heartbeats per heartbeat timeout, so a
tight work loop that calls ``heartbeat()`` does not flood the master."""


@final
class WorkerReporter:
    """Sends the readiness and heartbeat reports of one worker process
    through ``send`` (the worker's ``ControlClient.send``)."""

    def __init__(
        self,
        send: Callable[[WorkerReport], None],
        heartbeat_timeout: float | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._clock = clock
        self._min_interval = (
            None if heartbeat_timeout is None else heartbeat_timeout / HEARTBEATS_PER_TIMEOUT
        )
        self._lock = threading.Lock()
        self._ready_sent = False
        self._last_heartbeat: float | None = None

    def __repr__(self) -> str:
        return f"<WorkerReporter ready_sent={self._ready_sent} min_interval={self._min_interval}>"

    def ready(self) -> None:
        """Report the worker ready; only the first call sends."""
        with self._lock:
            if self._ready_sent:
                return
            self._ready_sent = True
        self._send(WorkerReport.READY)

    def heartbeat(self) -> None:
        """Report the worker alive, unless one was sent too recently."""
        if self._min_interval is None:
            return  # the service has no heartbeat timeout, so the master ignores them
        now = self._clock()
        with self._lock:
            last = self._last_heartbeat
            if last is not None and now - last < self._min_interval:
                return
            self._last_heartbeat = now
        self._send(WorkerReport.HEARTBEAT)


_reporter: WorkerReporter | None = None


def install_reporter(reporter: WorkerReporter) -> None:
    """Make ``reporter`` the one of this worker process."""
    global _reporter  # noqa: PLW0603 - one per process, set by the worker loop
    _reporter = reporter


def request_own_termination() -> None:
    """Make the calling worker stop gracefully, as on SIGTERM from its master."""
    os.kill(os.getpid(), signal.SIGTERM)


def report_ready() -> None:
    """Tell the master that the calling worker is ready."""
    if _reporter is not None:
        _reporter.ready()


def report_heartbeat() -> None:
    """Tell the master that the calling worker's work loop is alive."""
    if _reporter is not None:
        _reporter.heartbeat()
