"""Lifecycle listeners: code that the master calls as the manager runs.

Listeners are the extension point for integrations such as systemd
notification. Each method is called from the master's loop; one that
raises is logged and the manager goes on.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Sequence
from typing import final

from cotyledon.core import ManagerStatus
from cotyledon.core import ServiceId
from cotyledon.core import WorkerId
from cotyledon.core import record

LOG = logging.getLogger(__name__)


class WorkerEventKind(enum.Enum):
    """The kind of a worker event."""

    STARTED = "started"
    READY = "ready"
    RELOADED = "reloaded"
    EXITED = "exited"


@record
class WorkerEvent:
    """Something that happened to one worker process."""

    kind: WorkerEventKind
    service_id: ServiceId
    service_name: str
    worker_id: WorkerId
    pid: int
    exit_code: int | None = None
    """For EXITED: the exit status, or minus the signal that killed it."""
    stop_reason: str | None = None
    """For EXITED: why the master had asked the worker to stop, if it had."""


class LifecycleListener:
    """Base class of lifecycle listeners; every method does nothing.

    Subclass it and override what you need. ``status`` is a snapshot of
    the manager at the time of the call.
    """

    def on_ready(self, status: ManagerStatus) -> None:
        """Handle the first time every worker of the initial services is ready."""

    def on_reloading(self, status: ManagerStatus) -> None:
        """Handle the start of a reload (SIGHUP)."""

    def on_reloaded(self, status: ManagerStatus) -> None:
        """Handle the end of a reload: every worker has reloaded or been replaced
        by a ready one, or the reload was cancelled or failed."""

    def on_stopping(self, status: ManagerStatus) -> None:
        """Handle the start of the manager's stop."""

    def on_give_up(self, status: ManagerStatus) -> None:
        """Handle a service given up after more restarts than its
        ``max_restarts`` allows; ``status`` shows it as given up.

        With the service's ``on_give_up`` set to ``"stop"``, this comes before
        the manager starts to stop.
        """

    def on_status_changed(self, status: ManagerStatus) -> None:
        """Handle a change of the workers' status, at most once per wake-up of
        the master's loop."""

    def on_worker_event(self, event: WorkerEvent) -> None:
        """Handle the start, readiness, reload or exit of one worker."""

    def liveness_interval(self) -> float | None:
        """Seconds until the next call to ``on_liveness_tick``; None: none.

        The master calls it again before each wait, so a listener returns None
        while it has nothing due, and the master then sleeps until the next
        event.
        """
        return None

    def on_liveness_tick(self, status: ManagerStatus) -> None:
        """Handle a tick of the master's loop, which shows that the loop runs;
        ticks come about every ``liveness_interval`` seconds."""

    def close(self) -> None:
        """Release what the listener uses, once the manager has stopped."""


@final
class ListenerSet:
    """Calls every listener, logging and swallowing what each raises."""

    def __init__(self, listeners: Sequence[LifecycleListener]) -> None:
        self._listeners = tuple(listeners)

    def __repr__(self) -> str:
        return f"<ListenerSet {[type(listener).__name__ for listener in self._listeners]}>"

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def liveness_interval(self) -> float | None:
        intervals = [
            interval
            for interval in map(self._call_returning, self._listeners)
            if interval is not None and interval > 0
        ]
        return min(intervals) if intervals else None

    def ready(self, status: ManagerStatus) -> None:
        for listener in self._listeners:
            self._call(listener, "on_ready", status)

    def reloading(self, status: ManagerStatus) -> None:
        for listener in self._listeners:
            self._call(listener, "on_reloading", status)

    def reloaded(self, status: ManagerStatus) -> None:
        for listener in self._listeners:
            self._call(listener, "on_reloaded", status)

    def stopping(self, status: ManagerStatus) -> None:
        for listener in self._listeners:
            self._call(listener, "on_stopping", status)

    def give_up(self, status: ManagerStatus) -> None:
        for listener in self._listeners:
            self._call(listener, "on_give_up", status)

    def status_changed(self, status: ManagerStatus) -> None:
        for listener in self._listeners:
            self._call(listener, "on_status_changed", status)

    def worker_event(self, event: WorkerEvent) -> None:
        for listener in self._listeners:
            self._call(listener, "on_worker_event", event)

    def liveness_tick(self, status: ManagerStatus) -> None:
        for listener in self._listeners:
            self._call(listener, "on_liveness_tick", status)

    def close(self) -> None:
        for listener in self._listeners:
            self._call(listener, "close")

    @staticmethod
    def _call(listener: LifecycleListener, method: str, *args: object) -> None:
        try:
            getattr(listener, method)(*args)
        except Exception:
            LOG.exception("Lifecycle listener %r raised in %s()", listener, method)

    @staticmethod
    def _call_returning(listener: LifecycleListener) -> float | None:
        try:
            return listener.liveness_interval()
        except Exception:
            LOG.exception("Lifecycle listener %r raised in liveness_interval()", listener)
            return None
