"""Commands: what the supervisor decided, for the runtime to carry out.

The runtime carries out the commands of one step in the order given; the
order matters (the terminate hooks run before the first worker is told to
stop, a dead worker is reported before its replacement is spawned).
"""

from __future__ import annotations

import enum
from typing import Final

from cotyledon.core._ids import ServiceId
from cotyledon.core._ids import Slot
from cotyledon.core._record import record
from cotyledon.core._status import ServiceState

GIVE_UP_EXIT_STATUS: Final = 70
"""The master's exit status when it stops because a service was given up
(``EX_SOFTWARE`` of sysexits.h)."""


class WorkerSignal(enum.Enum):
    """A request sent to a live worker, mapped to a signal by the runtime."""

    TERMINATE = "terminate"
    """Run ``terminate()`` and exit (SIGTERM)."""

    RELOAD = "reload"
    """Run ``reload()`` and keep running (SIGHUP)."""

    INTERRUPT = "interrupt"
    """Exit at once (SIGINT)."""


class StopReason(enum.Enum):
    """The reason the supervisor stops a worker."""

    SHUTDOWN = "shutdown"
    """The manager stops gracefully."""

    INTERRUPT = "interrupt"
    """The manager stops at once."""

    RETIRE = "retire"
    """The service has fewer workers now; this slot goes away."""

    RESTART = "restart"
    """A reload restarts the worker; a new one takes its slot."""

    STARTUP_TIMEOUT = "startup-timeout"
    """The worker was not ready within its service's startup timeout; it is
    replaced as after a failure."""

    HUNG = "hung"
    """The worker sent no heartbeat within its service's heartbeat timeout;
    it is replaced as after a failure."""

    MAX_AGE = "max-age"
    """The worker reached its maximum age; a new one takes its slot."""

    GIVE_UP = "give-up"
    """Its service was given up: the slot is finished."""


@record
class SpawnWorker:
    """Start a worker process for this slot and report its pid."""

    slot: Slot


@record
class SignalWorker:
    """Send a request to the live worker of a slot."""

    slot: Slot
    pid: int
    signal: WorkerSignal
    reason: StopReason | None
    """The reason the worker is stopped, or None for a reload in place."""


@record
class KillWorker:
    """Kill the worker and its process group (SIGKILL): its deadline passed."""

    slot: Slot
    pid: int
    waited: float
    """Seconds the worker was given to stop."""


@record
class RunTerminateHooks:
    """Run the manager's ``on_terminate`` hooks."""


@record
class RunReloadHooks:
    """Run the manager's ``on_reload`` hooks, then report ``ReloadHooksDone``."""


@record
class ReportWorkerExit:
    """A worker ended: log it, and run the ``on_dead_worker`` hooks when
    ``runs_dead_worker_hooks``."""

    slot: Slot
    pid: int
    exit_code: int
    stop_reason: StopReason | None
    """Why the supervisor had asked the worker to stop; None: it was not."""
    respawn_delay: float | None
    """Seconds until its slot gets a new worker, or None if it gets none."""

    @property
    def runs_dead_worker_hooks(self) -> bool:
        """Tell whether the ``on_dead_worker`` hooks hear of this exit.

        They do not for the workers that the manager stops to shut down,
        as in cotyledon 2.x: a hook that raises an alert for each dead
        worker must stay quiet at each stop of the service.
        """
        return self.stop_reason not in (StopReason.SHUTDOWN, StopReason.INTERRUPT)


@record
class ReportSpawnFailure:
    """A worker could not be started: log it."""

    slot: Slot
    reason: str
    retry_delay: float | None
    """Seconds until the next attempt, or None if there is none."""


@record
class ReportServiceEnded:
    """A service has no worker left to run: log it; when it was given up,
    tell the listeners (``on_give_up``)."""

    service_id: ServiceId
    state: ServiceState
    """FINISHED or GIVEN_UP."""


@record
class AnnounceReady:
    """Every worker of the initial services is ready, for the first time."""


@record
class AnnounceReloading:
    """A reload starts."""


@record
class AnnounceReloaded:
    """Every worker has reloaded, or been replaced by a ready one; or a hook
    cancelled the reload and the workers were left as they were."""

    cancelled: bool = False
    failed: bool = False
    """A rolling replacement was not ready in time: the workers of its
    service that were not replaced yet keep running as they were."""


@record
class AnnounceStopping:
    """The manager starts to stop."""


@record
class ExitManager:
    """Every worker is gone: the master exits with this status."""

    status: int


Command = (
    SpawnWorker
    | SignalWorker
    | KillWorker
    | RunTerminateHooks
    | RunReloadHooks
    | ReportWorkerExit
    | ReportSpawnFailure
    | ReportServiceEnded
    | AnnounceReady
    | AnnounceReloading
    | AnnounceReloaded
    | AnnounceStopping
    | ExitManager
)
