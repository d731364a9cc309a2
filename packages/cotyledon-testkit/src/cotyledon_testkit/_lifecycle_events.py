"""Typed views of the lifecycle events that a manager reports to the harness.

The listener of ``_harness_listener.py`` sends them as ``ProbeEvent``
objects of kind ``manager_*`` and ``worker_*``; the functions here read
them back as ``ManagerLifecycleEvent`` and ``WorkerLifecycleEvent``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Final

import attrs

from cotyledon import ReloadOutcome
from cotyledon import WorkerEventKind
from cotyledon_testkit._channel import ProbeEvent


class ManagerEventKind(enum.Enum):
    """A change of state that the manager announces."""

    READY = "ready"
    """Every worker of the initial services is ready (once per run)."""
    RELOADING = "reloading"
    RELOADED = "reloaded"
    STOPPING = "stopping"
    GIVE_UP = "give_up"
    """A service restarted past its ``max_restarts`` and was given up."""


_WORKER_KINDS: Final = {f"worker_{kind.value}": kind for kind in WorkerEventKind}
_MANAGER_KINDS: Final = {f"manager_{kind.value}": kind for kind in ManagerEventKind}


@attrs.frozen
class WorkerLifecycleEvent:
    """A worker started, became ready, reloaded or exited."""

    kind: WorkerEventKind
    service: str
    worker_id: int
    pid: int
    """The worker's pid."""
    exit_code: int | None
    """For an exit: the status, or minus the number of the signal that killed it."""
    stop_reason: str | None
    """For an exit: the reason for which the master had requested the stop
    (``"shutdown"``, ``"interrupt"``, ``"retire"`` or ``"restart"``), or None."""
    time: float
    """``time.monotonic()`` in the master when it reported the event."""
    index: int
    """The position of the event in ``ManagerProcess.events``."""


@attrs.frozen
class ManagerLifecycleEvent:
    """The manager announced that it is ready, reloading, reloaded or
    stopping, or that it gave a service up."""

    kind: ManagerEventKind
    summary: str
    """The status in one line, such as ``web 4/4, mail 1/2 (3 restarts)``."""
    time: float
    """``time.monotonic()`` in the master when it reported the event."""
    index: int
    """The position of the event in ``ManagerProcess.events``."""
    reload_outcome: ReloadOutcome | None = None
    """For ``RELOADED``: whether the reload was done, cancelled by a hook or
    failed; None for the other kinds."""


def worker_events(
    events: Sequence[ProbeEvent],
    *,
    service: str | None = None,
    worker_id: int | None = None,
    kind: WorkerEventKind | None = None,
    after: int = 0,
) -> list[WorkerLifecycleEvent]:
    """Return the worker events from index ``after`` on that match the filters."""
    found = []
    for index in range(after, len(events)):
        event = events[index]
        event_kind = _WORKER_KINDS.get(event.kind)
        if event_kind is None:
            continue
        typed = WorkerLifecycleEvent(
            kind=event_kind,
            service=event["service"],
            worker_id=event["worker_id"],
            pid=event["worker_pid"],
            exit_code=event.get("exit_code"),
            stop_reason=event.get("stop_reason"),
            time=event.time,
            index=index,
        )
        if service is not None and typed.service != service:
            continue
        if worker_id is not None and typed.worker_id != worker_id:
            continue
        if kind is not None and typed.kind is not kind:
            continue
        found.append(typed)
    return found


def manager_events(
    events: Sequence[ProbeEvent], *, kind: ManagerEventKind | None = None, after: int = 0
) -> list[ManagerLifecycleEvent]:
    """Return the manager events from index ``after`` on, of ``kind`` if given."""
    found = []
    for index in range(after, len(events)):
        event = events[index]
        event_kind = _MANAGER_KINDS.get(event.kind)
        if event_kind is None:
            continue
        typed = ManagerLifecycleEvent(
            kind=event_kind,
            summary=event["summary"],
            time=event.time,
            index=index,
            reload_outcome=_reload_outcome(event.get("reload_outcome")),
        )
        if kind is None or typed.kind is kind:
            found.append(typed)
    return found


def _reload_outcome(value: object) -> ReloadOutcome | None:
    return None if value is None else ReloadOutcome(value)


def live_workers(
    events: Sequence[ProbeEvent], service: str | None = None
) -> dict[tuple[str, int], int]:
    """Map (service name, worker id) to the pid of each live worker.

    A worker is live from its ``worker_started`` event until the
    ``worker_exited`` event of the same pid. During a rolling reload a slot
    has two live processes: the map keeps the older one, and its
    replacement takes its place when it exits.
    """
    processes: dict[tuple[str, int], list[int]] = {}
    for event in worker_events(events, service=service):
        key = (event.service, event.worker_id)
        if event.kind is WorkerEventKind.STARTED:
            processes.setdefault(key, []).append(event.pid)
        elif event.kind is WorkerEventKind.EXITED and event.pid in processes.get(key, []):
            processes[key].remove(event.pid)
    return {key: pids[0] for key, pids in sorted(processes.items()) if pids}
