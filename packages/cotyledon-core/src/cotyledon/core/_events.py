"""Events: what happened, as the runtime reports it to the supervisor."""

from __future__ import annotations

import enum

from cotyledon.core._ids import ServiceId
from cotyledon.core._ids import Slot
from cotyledon.core._record import record
from cotyledon.core._spec import ServiceSpec


class StopMode(enum.Enum):
    """The way the manager stops."""

    GRACEFUL = "graceful"
    """Run the terminate hooks, then let each worker's ``terminate()`` run
    until its graceful shutdown deadline (SIGTERM to the master)."""

    FAST = "fast"
    """Tell every worker to exit at once (SIGINT to the master)."""


@record
class Start:
    """The manager starts: spawn the workers of every service."""


@record
class ServiceAdded:
    """A service was added to the manager."""

    spec: ServiceSpec


@record
class WorkersChanged:
    """The number of workers of a service was changed."""

    service_id: ServiceId
    workers: int


@record
class ShutdownTimeoutChanged:
    """The graceful shutdown timeout of a service was changed.

    It applies to the stops that start after the change; None means that
    a stopping worker may take as long as it needs.
    """

    service_id: ServiceId
    graceful_shutdown_timeout: float | None


@record
class WorkerSpawned:
    """The process of a slot was started, with this pid."""

    slot: Slot
    pid: int


@record
class SpawnFailed:
    """The process of a slot could not be started."""

    slot: Slot
    reason: str


@record
class WorkerExited:
    """A worker process ended and was reaped.

    ``exit_code`` follows ``multiprocessing.Process.exitcode``: the exit
    status, or minus the number of the signal that killed the process.
    """

    pid: int
    exit_code: int


class WorkerReport(enum.Enum):
    """A report that a worker sends to its master about itself."""

    READY = "ready"
    """The service is built and ``run()`` starts, or, for a service that
    announces its readiness itself, it called ``notify_ready()``."""

    RELOADED = "reloaded"
    """``reload()`` returned."""

    HEARTBEAT = "heartbeat"
    """The service's work loop is alive (``Service.heartbeat()``)."""

    TERMINATING = "terminating"
    """The worker got SIGTERM, from the master or from elsewhere, and its
    ``terminate()`` runs."""


@record
class WorkerReported:
    """A live worker sent a report over its control channel."""

    pid: int
    report: WorkerReport
    received_at: float | None = None
    """For ``RELOADED``: when the worker received the request of the reload
    that it finished, on the supervisor's clock. A reload received before
    the supervisor's latest request to the worker is an earlier one, and
    the worker calls ``reload()`` again. None: the report covers the latest
    request."""


@record
class WorkersReported:
    """Reports read together from the control channel, in order of arrival.

    They are all applied before any deadline is checked. A batch that
    waited while the master was busy has fresh heartbeats of workers whose
    liveness deadline passed meanwhile, and none of those workers is hung.
    """

    reports: tuple[WorkerReported, ...]


@record
class StopRequested:
    """The manager was asked to stop."""

    mode: StopMode


@record
class ReloadRequested:
    """The manager was asked to reload its services."""


@record
class ReloadHooksDone:
    """The ``on_reload`` hooks have run; one may have cancelled the reload."""

    cancelled: bool


@record
class TimerFired:
    """The deadline that the supervisor asked for has come."""


Event = (
    Start
    | ServiceAdded
    | WorkersChanged
    | ShutdownTimeoutChanged
    | WorkerSpawned
    | SpawnFailed
    | WorkerExited
    | WorkerReported
    | WorkersReported
    | StopRequested
    | ReloadRequested
    | ReloadHooksDone
    | TimerFired
)
