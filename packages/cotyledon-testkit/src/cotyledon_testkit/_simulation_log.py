"""The records that a ``Simulator`` keeps of what happened, in order.

Each record has the fake time at which it happened and prints as one line
of the simulation's log, such as ``12.400  web(1) pid 1003 exited with
status 1; respawn in 0.200 s``.
"""

from __future__ import annotations

from typing import Literal

import attrs

from cotyledon.core import ServiceState
from cotyledon.core import StopReason
from cotyledon.core import WorkerSignal


@attrs.frozen
class SimRecord:
    """One thing that happened in a simulation, at fake time ``time``."""

    time: float

    def __str__(self) -> str:
        return f"{self.time:10.3f}  {self.describe()}"

    def describe(self) -> str:
        """Describe what happened in one line, without the time."""
        return type(self).__name__


@attrs.frozen
class ManagerStarted(SimRecord):
    """The manager started: its supervisor got the ``Start`` event."""

    def describe(self) -> str:
        return "manager started"


@attrs.frozen
class ManagerSignalled(SimRecord):
    """The test sent a signal to the manager."""

    signal: str
    """The signal's name, such as ``"SIGTERM"``."""

    def describe(self) -> str:
        return f"manager received {self.signal}"


@attrs.frozen
class ServiceReconfigured(SimRecord):
    """The test changed the number of workers of a service."""

    service: str
    workers: int

    def describe(self) -> str:
        return f"service {self.service} reconfigured to {self.workers} workers"


@attrs.frozen
class ManagerAnnounced(SimRecord):
    """The manager announced a change of its state to its listeners."""

    announcement: Literal["ready", "reloading", "reloaded", "stopping"]
    cancelled_reload: bool = False
    """For ``reloaded``: a hook cancelled the reload, so no worker reloaded."""
    failed_reload: bool = False
    """For ``reloaded``: a rolling replacement was not ready in time, so the
    workers not replaced yet kept running as they were."""

    def describe(self) -> str:
        if self.cancelled_reload:
            return "manager reload cancelled by a hook"
        if self.failed_reload:
            return "manager reload failed: a rolling replacement was not ready in time"
        return f"manager {self.announcement}"


@attrs.frozen
class HooksRun(SimRecord):
    """The manager ran its ``on_terminate`` or ``on_reload`` hooks."""

    hooks: Literal["on_terminate", "on_reload"]
    cancelled_reload: bool = False
    """For ``on_reload``: a hook raised ``CancelReload``."""

    def describe(self) -> str:
        cancelled = " (one cancelled the reload)" if self.cancelled_reload else ""
        return f"{self.hooks} hooks run{cancelled}"


@attrs.frozen
class WorkerStarted(SimRecord):
    """A fake worker process was started for a slot."""

    service: str
    worker_id: int
    pid: int

    def describe(self) -> str:
        return f"{self.service}({self.worker_id}) started as pid {self.pid}"


@attrs.frozen
class WorkerStartFailed(SimRecord):
    """A spawn failed because the test made spawns fail (``Simulator.fail_spawns``)."""

    service: str
    worker_id: int
    reason: str
    retry_delay: float | None
    """Seconds until the next attempt, or None if there is none."""

    def describe(self) -> str:
        retry = "no retry" if self.retry_delay is None else f"retry in {self.retry_delay:.3f} s"
        return f"{self.service}({self.worker_id}) failed to start ({self.reason}); {retry}"


@attrs.frozen
class WorkerReady(SimRecord):
    """A worker reported that it is ready."""

    service: str
    worker_id: int
    pid: int

    def describe(self) -> str:
        return f"{self.service}({self.worker_id}) pid {self.pid} ready"


@attrs.frozen
class WorkerReloaded(SimRecord):
    """A worker reported that its ``reload()`` returned."""

    service: str
    worker_id: int
    pid: int

    def describe(self) -> str:
        return f"{self.service}({self.worker_id}) pid {self.pid} reloaded"


@attrs.frozen
class WorkerSignalled(SimRecord):
    """The manager sent a request (a signal) to a worker."""

    service: str
    worker_id: int
    pid: int
    signal: WorkerSignal
    reason: StopReason | None
    """The reason for the stop, or None for a reload in place."""

    def describe(self) -> str:
        why = f" ({self.reason.value})" if self.reason is not None else ""
        return f"{self.service}({self.worker_id}) pid {self.pid} sent {self.signal.value}{why}"


@attrs.frozen
class WorkerKilled(SimRecord):
    """The manager killed a worker whose stop deadline had passed."""

    service: str
    worker_id: int
    pid: int
    waited: float
    """Seconds the worker was given to stop."""

    def describe(self) -> str:
        return (
            f"{self.service}({self.worker_id}) pid {self.pid} killed with SIGKILL "
            f"after {self.waited:.3f} s"
        )


@attrs.frozen
class WorkerEnded(SimRecord):
    """A worker process ended, as the manager reports it."""

    service: str
    worker_id: int
    pid: int
    exit_code: int
    """The exit status, or minus the number of the signal that killed it."""
    stop_reason: StopReason | None
    """The reason for which the manager had requested the stop, or None if it had not."""
    respawn_delay: float | None
    """Seconds until the slot gets a new worker, or None if it gets none."""

    def describe(self) -> str:
        how = (
            f"was killed by signal {-self.exit_code}"
            if self.exit_code < 0
            else f"exited with status {self.exit_code}"
        )
        why = f" ({self.stop_reason.value})" if self.stop_reason is not None else ""
        then = (
            "no respawn" if self.respawn_delay is None else f"respawn in {self.respawn_delay:.3f} s"
        )
        return f"{self.service}({self.worker_id}) pid {self.pid} {how}{why}; {then}"


@attrs.frozen
class ServiceEnded(SimRecord):
    """A service has no worker left to run: finished, or given up."""

    service: str
    state: ServiceState
    """``ServiceState.FINISHED`` or ``ServiceState.GIVEN_UP``."""

    def describe(self) -> str:
        return f"service {self.service} {self.state.value}"


@attrs.frozen
class ManagerExited(SimRecord):
    """Every worker is gone and the manager exited with ``status``."""

    status: int

    def describe(self) -> str:
        return f"manager exited with status {self.status}"
