"""The pure core of cotyledon: supervision decisions, with no I/O.

Nothing here touches the operating system, reads a clock or logs. The
runtime (``cotyledon.runtime``) turns what the OS reports into events,
passes them to ``Supervisor.handle`` with the time, and carries out the
commands it gets back.
"""

from cotyledon.core._clock import Clock
from cotyledon.core._commands import GIVE_UP_EXIT_STATUS
from cotyledon.core._commands import AnnounceReady
from cotyledon.core._commands import AnnounceReloaded
from cotyledon.core._commands import AnnounceReloading
from cotyledon.core._commands import AnnounceStopping
from cotyledon.core._commands import Command
from cotyledon.core._commands import ExitManager
from cotyledon.core._commands import KillWorker
from cotyledon.core._commands import ReportServiceEnded
from cotyledon.core._commands import ReportSpawnFailure
from cotyledon.core._commands import ReportWorkerExit
from cotyledon.core._commands import RunReloadHooks
from cotyledon.core._commands import RunTerminateHooks
from cotyledon.core._commands import SignalWorker
from cotyledon.core._commands import SpawnWorker
from cotyledon.core._commands import StopReason
from cotyledon.core._commands import WorkerSignal
from cotyledon.core._events import Event
from cotyledon.core._events import ReloadHooksDone
from cotyledon.core._events import ReloadRequested
from cotyledon.core._events import ServiceAdded
from cotyledon.core._events import ShutdownTimeoutChanged
from cotyledon.core._events import SpawnFailed
from cotyledon.core._events import Start
from cotyledon.core._events import StopMode
from cotyledon.core._events import StopRequested
from cotyledon.core._events import TimerFired
from cotyledon.core._events import WorkerExited
from cotyledon.core._events import WorkerReport
from cotyledon.core._events import WorkerReported
from cotyledon.core._events import WorkersChanged
from cotyledon.core._events import WorkerSpawned
from cotyledon.core._events import WorkersReported
from cotyledon.core._ids import ServiceId
from cotyledon.core._ids import Slot
from cotyledon.core._ids import WorkerId
from cotyledon.core._lifecycle import PHASE_TRANSITIONS
from cotyledon.core._lifecycle import SLOT_TRANSITIONS
from cotyledon.core._lifecycle import InvalidTransitionError
from cotyledon.core._lifecycle import ManagerPhase
from cotyledon.core._lifecycle import SlotState
from cotyledon.core._lifecycle import SlotTrigger
from cotyledon.core._lifecycle import render_slot_table
from cotyledon.core._record import FrozenRecordError
from cotyledon.core._record import evolve
from cotyledon.core._record import field
from cotyledon.core._record import record
from cotyledon.core._respawn import RespawnLimiter
from cotyledon.core._respawn import RespawnPolicy
from cotyledon.core._respawn import RestartIntensity
from cotyledon.core._shutdown import FAST_STOP_GRACE
from cotyledon.core._spec import GiveUpAction
from cotyledon.core._spec import ReloadPolicy
from cotyledon.core._spec import RestartPolicy
from cotyledon.core._spec import ServiceSpec
from cotyledon.core._status import ManagerStatus
from cotyledon.core._status import ReloadOutcome
from cotyledon.core._status import ServiceState
from cotyledon.core._status import ServiceStatus
from cotyledon.core._status import WorkerStatus
from cotyledon.core._supervisor import MAX_AGE_JITTER
from cotyledon.core._supervisor import ROLLING_READY_TIMEOUT
from cotyledon.core._supervisor import SlotView
from cotyledon.core._supervisor import Step
from cotyledon.core._supervisor import Supervisor
from cotyledon.core._utils import assert_never

__all__ = [
    "FAST_STOP_GRACE",
    "GIVE_UP_EXIT_STATUS",
    "MAX_AGE_JITTER",
    "PHASE_TRANSITIONS",
    "ROLLING_READY_TIMEOUT",
    "SLOT_TRANSITIONS",
    "AnnounceReady",
    "AnnounceReloaded",
    "AnnounceReloading",
    "AnnounceStopping",
    "Clock",
    "Command",
    "Event",
    "ExitManager",
    "FrozenRecordError",
    "GiveUpAction",
    "InvalidTransitionError",
    "KillWorker",
    "ManagerPhase",
    "ManagerStatus",
    "ReloadHooksDone",
    "ReloadOutcome",
    "ReloadPolicy",
    "ReloadRequested",
    "ReportServiceEnded",
    "ReportSpawnFailure",
    "ReportWorkerExit",
    "RespawnLimiter",
    "RespawnPolicy",
    "RestartIntensity",
    "RestartPolicy",
    "RunReloadHooks",
    "RunTerminateHooks",
    "ServiceAdded",
    "ServiceId",
    "ServiceSpec",
    "ServiceState",
    "ServiceStatus",
    "ShutdownTimeoutChanged",
    "SignalWorker",
    "Slot",
    "SlotState",
    "SlotTrigger",
    "SlotView",
    "SpawnFailed",
    "SpawnWorker",
    "Start",
    "Step",
    "StopMode",
    "StopReason",
    "StopRequested",
    "Supervisor",
    "TimerFired",
    "WorkerExited",
    "WorkerId",
    "WorkerReport",
    "WorkerReported",
    "WorkerSignal",
    "WorkerSpawned",
    "WorkerStatus",
    "WorkersChanged",
    "WorkersReported",
    "assert_never",
    "evolve",
    "field",
    "record",
    "render_slot_table",
]
