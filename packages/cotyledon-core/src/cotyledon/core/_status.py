"""Status snapshots: the state of a manager and its workers at one time."""

from __future__ import annotations

import enum

from cotyledon.core._ids import ServiceId
from cotyledon.core._ids import WorkerId
from cotyledon.core._lifecycle import ManagerPhase
from cotyledon.core._lifecycle import SlotState
from cotyledon.core._record import record


class ServiceState(enum.Enum):
    """Whether a service still runs workers."""

    RUNNING = "running"
    """Its workers are kept running (or some are waiting to restart)."""

    FINISHED = "finished"
    """Every worker ended for good, as its restart policy requires."""

    GIVEN_UP = "given-up"
    """It restarted more often than its restart intensity allows."""


class ReloadOutcome(enum.Enum):
    """The way a reload of the manager ended."""

    DONE = "done"
    """Every worker reloaded, or was replaced by a ready one."""

    CANCELLED = "cancelled"
    """An ``on_reload`` hook cancelled it: the workers were left as they were."""

    FAILED = "failed"
    """A rolling replacement was not ready in time: the workers of its
    service that were not replaced yet kept running as they were."""


@record
class WorkerStatus:
    """One worker slot."""

    worker_id: WorkerId
    state: SlotState
    pid: int | None
    ready: bool
    """The worker has reported that its ``run()`` started."""
    restarts: int
    """How many times the slot's worker died without being asked to."""
    uptime: float | None
    """Seconds since its process started; None without a process."""
    last_exit_code: int | None
    """The exit code of the slot's previous process, if any."""
    kill_in: float | None = None
    """Seconds until a stopping worker is killed at its deadline; None when
    it is not stopping, or has no deadline (a graceful shutdown timeout of
    0 lets it take as long as it needs)."""


@record
class ServiceStatus:
    """One service and its worker slots, lowest worker id first."""

    service_id: ServiceId
    name: str
    workers: int
    """The number of workers the service is configured to have."""
    slots: tuple[WorkerStatus, ...]
    state: ServiceState = ServiceState.RUNNING

    @property
    def ready_workers(self) -> int:
        """The number of live workers that are ready."""
        return sum(1 for slot in self.slots if slot.ready)

    @property
    def restarts(self) -> int:
        return sum(slot.restarts for slot in self.slots)


@record
class ManagerStatus:
    """The manager as a whole, with its services in the order of addition."""

    phase: ManagerPhase
    ready: bool
    """Every worker of the initial services has been ready at least once."""
    services: tuple[ServiceStatus, ...]
    last_reload: ReloadOutcome | None = None
    """The outcome of the latest reload that ended; None before the first one ends."""

    @property
    def ready_workers(self) -> int:
        return sum(service.ready_workers for service in self.services)

    @property
    def workers(self) -> int:
        return sum(service.workers for service in self.services)

    @property
    def restarts(self) -> int:
        return sum(service.restarts for service in self.services)

    def summary(self) -> str:
        """Describe the status in one line: ``web 4/4, mail 1/2 (3 restarts)``."""
        parts = [
            f"{service.name} {service.ready_workers}/{service.workers}"
            + ("" if service.state is ServiceState.RUNNING else f" {service.state.value}")
            for service in self.services
        ]
        text = ", ".join(parts) if parts else "no services"
        restarts = self.restarts
        if restarts:
            text += f" ({restarts} restart{'s' if restarts != 1 else ''})"
        if self.phase is not ManagerPhase.RUNNING:
            text = f"{self.phase.value}: {text}"
        return text
