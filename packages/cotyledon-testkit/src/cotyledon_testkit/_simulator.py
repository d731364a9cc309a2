"""A simulated manager: the pure supervisor run against fake processes.

``Simulator`` drives ``cotyledon.core.Supervisor`` with a ``FakeClock``
and carries out its commands against a table of fake processes, the way
the master's loop carries them out against real ones. A test of restart
backoff, shutdown deadlines or reloads then runs in microseconds, with no
process and no sleep.
"""

from __future__ import annotations

import collections
import enum
import heapq
import itertools
import math
import random as random_module
import signal
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Any
from typing import Final
from typing import Literal
from typing import TypeVar
from typing import final

import attrs

import cotyledon
from cotyledon.core import AnnounceReady
from cotyledon.core import AnnounceReloaded
from cotyledon.core import AnnounceReloading
from cotyledon.core import AnnounceStopping
from cotyledon.core import Command
from cotyledon.core import Event
from cotyledon.core import ExitManager
from cotyledon.core import KillWorker
from cotyledon.core import ManagerPhase
from cotyledon.core import ManagerStatus
from cotyledon.core import ReloadHooksDone
from cotyledon.core import ReloadPolicy
from cotyledon.core import ReloadRequested
from cotyledon.core import ReportServiceEnded
from cotyledon.core import ReportSpawnFailure
from cotyledon.core import ReportWorkerExit
from cotyledon.core import RespawnPolicy
from cotyledon.core import RunReloadHooks
from cotyledon.core import RunTerminateHooks
from cotyledon.core import ServiceAdded
from cotyledon.core import ServiceId
from cotyledon.core import ServiceSpec
from cotyledon.core import SignalWorker
from cotyledon.core import Slot
from cotyledon.core import SpawnFailed
from cotyledon.core import SpawnWorker
from cotyledon.core import Start
from cotyledon.core import StopMode
from cotyledon.core import StopRequested
from cotyledon.core import Supervisor
from cotyledon.core import TimerFired
from cotyledon.core import WorkerExited
from cotyledon.core import WorkerReport
from cotyledon.core import WorkerReported
from cotyledon.core import WorkersChanged
from cotyledon.core import WorkerSignal
from cotyledon.core import WorkerSpawned
from cotyledon.core import assert_never
from cotyledon.runtime import HEARTBEATS_PER_TIMEOUT
from cotyledon.specs import check_seconds
from cotyledon.specs import default_reload_policy
from cotyledon.specs import service_name
from cotyledon.specs import service_spec
from cotyledon_testkit._clock import FakeClock
from cotyledon_testkit._simulation_log import HooksRun
from cotyledon_testkit._simulation_log import ManagerAnnounced
from cotyledon_testkit._simulation_log import ManagerExited
from cotyledon_testkit._simulation_log import ManagerSignalled
from cotyledon_testkit._simulation_log import ManagerStarted
from cotyledon_testkit._simulation_log import ServiceEnded
from cotyledon_testkit._simulation_log import ServiceReconfigured
from cotyledon_testkit._simulation_log import SimRecord
from cotyledon_testkit._simulation_log import WorkerEnded
from cotyledon_testkit._simulation_log import WorkerKilled
from cotyledon_testkit._simulation_log import WorkerReady
from cotyledon_testkit._simulation_log import WorkerReloaded
from cotyledon_testkit._simulation_log import WorkerSignalled
from cotyledon_testkit._simulation_log import WorkerStarted
from cotyledon_testkit._simulation_log import WorkerStartFailed

R = TypeVar("R", bound=SimRecord)

ServiceRef = str | ServiceId | type[cotyledon.Service]
"""A service, by the name it was added with, by the id that ``add`` returned,
or by the ``Service`` subclass whose name it has."""

DEFAULT_IDLE_LIMIT: Final = 3600.0
"""Fake seconds that ``run_until_idle`` may cover by default."""

DEFAULT_STEP_LIMIT: Final = 10_000
"""Deadlines that ``run_until_idle`` may reach by default."""

_KILL_STATUS: Final = -int(signal.SIGKILL)
_INTERRUPTED_STATUS: Final = 1
"""The status of a real worker that exits on SIGINT."""
_LOG_TAIL: Final = 30

_ANNOUNCEMENTS: Final[
    Mapping[type[Command], Literal["ready", "reloading", "reloaded", "stopping"]]
] = {
    AnnounceReady: "ready",
    AnnounceReloading: "reloading",
    AnnounceReloaded: "reloaded",
    AnnounceStopping: "stopping",
}


class SimulationLimitError(AssertionError):
    """A simulation still had work scheduled when its limit was reached."""


def _delay(instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    # Written so that NaN fails too: every comparison with NaN is False.
    if value is not None and not (0 <= value < math.inf):
        raise ValueError(
            f"{attribute.name} must be None or a finite number of seconds >= 0, got {value!r}"
        )


@attrs.frozen
class WorkerBehaviour:
    """The actions that the fake workers of a service take on their own.

    Each delay is in fake seconds; None means that the worker never does
    it by itself, so the test does it (``Simulator.ready``, ``exit``,
    ``reloaded``) or the manager's deadline kills the worker.
    """

    ready_after: float | None = attrs.field(default=0.0, validator=_delay)
    """Delay from the start of a worker to its report that it is ready."""

    stop_after: float | None = attrs.field(default=0.0, validator=_delay)
    """Delay from a terminate request to the worker's exit with status 0."""

    interrupt_after: float | None = attrs.field(default=0.0, validator=_delay)
    """Delay from an interrupt request to the worker's exit with status 1."""

    reload_after: float | None = attrs.field(default=0.0, validator=_delay)
    """Delay from a reload request to the worker's report that it reloaded."""

    crash_after: float | None = attrs.field(default=None, validator=_delay)
    """Delay from the start of a worker to its exit with ``crash_code``."""

    crash_code: int = 1
    """The exit status of a crash; minus a signal number for a death by signal."""

    hang_after: float | None = attrs.field(default=None, validator=_delay)
    """Delay from the start of a worker to its last heartbeat; None: it never
    stops sending them. Until then, a worker of a service added with a
    ``heartbeat_timeout`` sends ``HEARTBEATS_PER_TIMEOUT`` heartbeats per
    timeout, as a real one that calls ``heartbeat()`` in a tight loop does.
    0 sends none."""


@attrs.define
class FakeProcess:
    """A simulated worker process, alive until it exits or is killed."""

    pid: int
    service: str
    service_id: ServiceId
    worker_id: int
    started_at: float
    signals: list[WorkerSignal] = attrs.field(factory=list)
    """The requests the manager sent it, in order."""
    ready: bool = False
    exit_code: int | None = None
    """The exit status, or minus the signal number; None while it lives."""
    ended_at: float | None = None

    def __repr__(self) -> str:
        state = "alive" if self.exit_code is None else f"exited={self.exit_code}"
        ready = " ready" if self.ready else ""
        signals = f" signals={[s.value for s in self.signals]}" if self.signals else ""
        return (
            f"<FakeProcess {self.service}({self.worker_id}) pid={self.pid} {state}{ready}{signals}>"
        )

    @property
    def alive(self) -> bool:
        """Whether the process has not exited yet."""
        return self.exit_code is None


class _ActionKind(enum.Enum):
    READY = "ready"
    RELOADED = "reloaded"
    HEARTBEAT = "heartbeat"
    EXIT = "exit"


@attrs.frozen
class _Action:
    """Something a fake process does at a later fake time."""

    kind: _ActionKind
    pid: int
    exit_code: int = 0


@attrs.define
class _Service:
    spec: ServiceSpec
    behaviour: WorkerBehaviour


@final
class Simulator:
    """A manager simulated on a fake clock, with fake worker processes.

    Add services with ``add`` (it takes a ``Service`` subclass, as
    ``ServiceManager.add`` does, or a name), then ``start()``. The fake
    workers act as their ``WorkerBehaviour`` sets; the test makes them exit
    (``exit``), report (``ready``, ``reloaded``), signals the manager
    (``send_signal``) and moves time (``advance``, ``run_until_idle``).
    Whatever the supervisor decides is carried out at once: a spawn gives
    a fresh fake pid, a stop request reaches the fake worker, a kill ends
    it with status -9.

    ``log`` holds what happened, as ``SimRecord`` objects; ``processes()``
    gives the live fake processes of each slot. ``graceful_shutdown_timeout``
    (seconds, 0 to wait forever) and ``respawn_policy`` are those of the
    manager; the jitter of the backoff comes from ``random`` if given,
    else from a generator seeded with ``seed``. ``lambda: 0.5`` gives no
    jitter at all.
    """

    def __init__(
        self,
        *,
        graceful_shutdown_timeout: float = 60.0,
        respawn_policy: RespawnPolicy | None = None,
        seed: int = 0,
        random: Callable[[], float] | None = None,
        clock: FakeClock | None = None,
        first_pid: int = 1000,
    ) -> None:
        timeout = check_seconds(graceful_shutdown_timeout, "graceful_shutdown_timeout")
        assert timeout is not None
        self.clock = clock if clock is not None else FakeClock()
        self.respawn_policy = respawn_policy or RespawnPolicy()
        self._timeout = timeout
        jitter = random if random is not None else random_module.Random(seed).random
        self.supervisor = Supervisor(random=jitter, respawn_policy=self.respawn_policy)
        self._services: dict[ServiceId, _Service] = {}
        self._pids = itertools.count(first_pid)
        self._live: dict[int, FakeProcess] = {}
        self._all: list[FakeProcess] = []
        # Heap of (time, sequence, action): what the fake processes do later.
        self._actions: list[tuple[float, int, _Action]] = []
        self._sequence = itertools.count()
        self._deadline: float | None = None
        self._spawn_failures: dict[ServiceId | None, tuple[int | None, str]] = {}
        self._reloads_to_cancel = 0
        self._started = False
        self._exit_status: int | None = None
        self._log: list[SimRecord] = []

    def __repr__(self) -> str:
        if self._exit_status is not None:
            state = f"exit_status={self._exit_status}"
        else:
            upcoming = self.next_event_time()
            timer = "none" if upcoming is None else f"{upcoming:.3f}"
            state = f"live={len(self._live)} next={timer}"
        return (
            f"<Simulator t={self.now:.3f} phase={self.phase.value} {state} "
            f"records={len(self._log)}>"
        )

    # Setting up

    def add(
        self,
        service: str | Callable[..., cotyledon.Service],
        workers: int = 1,
        *,
        behaviour: WorkerBehaviour | None = None,
        graceful_shutdown_timeout: float | None = None,
        restart: str = "always",
        restart_prevent_exit_status: Iterable[int] = (),
        max_restarts: tuple[int, float] | None = None,
        on_give_up: str = "stop",
        stop_manager_on_exit: bool = False,
        startup_timeout: float | None = None,
        heartbeat_timeout: float | None = None,
        max_age: float | None = None,
        reload: str | None = None,
    ) -> ServiceId:
        """Add a service of ``workers`` fake workers; return its id.

        ``service`` is a name, or a ``Service`` subclass whose name,
        ``graceful_shutdown_timeout`` and ``reload()`` are read as
        ``ServiceManager.add`` reads them: a class that keeps the default
        ``reload()`` restarts its workers on reload, and a name reloads in
        place. ``graceful_shutdown_timeout`` overrides what the class
        defines; None means the manager's. Both are checked as
        ``ServiceManager.add`` checks the class's: a number of seconds,
        finite and >= 0. A service added after
        ``start()`` starts at once.

        The supervision policies, from ``restart`` to ``reload``, are those
        of ``ServiceManager.add``, checked by the same code: a value that
        ``add`` rejects raises the same error here.
        """
        self._check_clock()
        if isinstance(service, str):
            name = service
            class_timeout = None
            default_reload = ReloadPolicy.IN_PLACE
        elif callable(service):
            name = service_name(service)
            # Checked even when the keyword overrides it, because
            # ServiceManager.add rejects such a class.
            class_timeout = check_seconds(
                getattr(service, "graceful_shutdown_timeout", None),
                f"graceful_shutdown_timeout of service {name!r}",
                allow_none=True,
            )
            default_reload = default_reload_policy(service)
        else:
            raise TypeError(f"service must be a name or a Service subclass, got {service!r}")
        own_timeout = check_seconds(
            graceful_shutdown_timeout,
            f"graceful_shutdown_timeout of service {name!r}",
            allow_none=True,
        )
        if own_timeout is None:
            own_timeout = class_timeout
        timeout = self._timeout if own_timeout is None else own_timeout
        spec = service_spec(
            ServiceId(uuid.UUID(int=len(self._services) + 1)),
            name,
            workers,
            # As in ServiceManager, 0 means that a stopping worker may take
            # as long as it needs.
            timeout or None,
            default_reload=default_reload,
            restart=restart,
            restart_prevent_exit_status=restart_prevent_exit_status,
            max_restarts=max_restarts,
            on_give_up=on_give_up,
            stop_manager_on_exit=stop_manager_on_exit,
            startup_timeout=startup_timeout,
            heartbeat_timeout=heartbeat_timeout,
            max_age=max_age,
            reload=reload,
        )
        self._services[spec.service_id] = _Service(spec, behaviour or WorkerBehaviour())
        self._feed(ServiceAdded(spec))
        self._settle()
        return spec.service_id

    def start(self) -> Simulator:
        """Start the manager: spawn the workers of every service; return self."""
        self._check_clock()
        if self._started:
            raise RuntimeError(f"{self!r} was already started")
        self._started = True
        self._log.append(ManagerStarted(self.now))
        self._feed(Start())
        self._settle()
        return self

    # What the test does

    def exit(
        self, service: ServiceRef, worker_id: int, code: int = 1, *, replacement: bool = False
    ) -> FakeProcess:
        """Make the live worker of a slot exit with ``code``; return it.

        A negative ``code`` is minus the number of the signal that killed
        the worker, as in ``on_dead_worker`` hooks. With ``replacement``,
        the slot's replacement in a rolling reload exits instead.
        """
        self._check_clock()
        process = self._target(service, worker_id, replacement=replacement)
        self._end(process, code)
        self._feed(WorkerExited(process.pid, code))
        self._settle()
        return process

    def ready(
        self, service: ServiceRef, worker_id: int, *, replacement: bool = False
    ) -> FakeProcess:
        """Make the live worker of a slot (or its replacement in a rolling
        reload) report that it is ready; return it."""
        self._check_clock()
        process = self._target(service, worker_id, replacement=replacement)
        self._report(process, WorkerReport.READY)
        self._settle()
        return process

    def reloaded(self, service: ServiceRef, worker_id: int) -> FakeProcess:
        """Make the live worker of a slot report that it reloaded; return it."""
        self._check_clock()
        process = self.process(service, worker_id)
        self._report(process, WorkerReport.RELOADED)
        self._settle()
        return process

    def heartbeat(
        self, service: ServiceRef, worker_id: int, *, replacement: bool = False
    ) -> FakeProcess:
        """Make the live worker of a slot (or its replacement in a rolling
        reload) send one heartbeat now; return it.

        For workers whose ``WorkerBehaviour.hang_after`` has stopped their
        own heartbeats; the log keeps no record of heartbeats.
        """
        self._check_clock()
        process = self._target(service, worker_id, replacement=replacement)
        self._feed(WorkerReported(process.pid, WorkerReport.HEARTBEAT))
        self._settle()
        return process

    def send_signal(self, signum: int) -> None:
        """Send SIGTERM, SIGINT, SIGHUP or SIGALRM to the manager.

        As in the real master: SIGTERM stops gracefully, SIGINT stops at
        once, SIGHUP reloads and SIGALRM does nothing.
        """
        self._check_clock()
        name = signal.Signals(signum).name
        if signum == signal.SIGTERM:
            event: Event | None = StopRequested(StopMode.GRACEFUL)
        elif signum == signal.SIGINT:
            event = StopRequested(StopMode.FAST)
        elif signum == signal.SIGHUP:
            event = ReloadRequested()
        elif signum == signal.SIGALRM:
            event = None
        else:
            raise ValueError(f"the manager handles SIGTERM, SIGINT, SIGHUP and SIGALRM, not {name}")
        self._log.append(ManagerSignalled(self.now, name))
        if event is not None:
            self._feed(event)
            self._settle()

    def reconfigure(self, service: ServiceRef, workers: int) -> None:
        """Change the number of workers of a service, as ``ServiceManager.reconfigure``."""
        self._check_clock()
        service_id = self.service_id(service)
        self._log.append(ServiceReconfigured(self.now, self._name(service_id), workers))
        self._feed(WorkersChanged(service_id, workers))
        self._settle()

    def fail_spawns(
        self,
        service: ServiceRef | None = None,
        *,
        times: int | None = None,
        reason: str = "OSError: simulated spawn failure",
    ) -> None:
        """Make the next spawns of ``service`` (of any service if None) fail.

        ``times`` spawns fail, or every spawn until ``allow_spawns`` if it
        is None.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be None or an int >= 1, got {times!r}")
        key = None if service is None else self.service_id(service)
        self._spawn_failures[key] = (times, reason)

    def cancel_next_reload(self) -> None:
        """Make the ``on_reload`` hooks of the next reload cancel it, as a
        hook that raises ``cotyledon.CancelReload`` does."""
        self._reloads_to_cancel += 1

    def allow_spawns(self, service: ServiceRef | None = None) -> None:
        """Let the spawns of ``service`` (of every service if None) succeed again."""
        if service is None:
            self._spawn_failures.clear()
        else:
            self._spawn_failures.pop(self.service_id(service), None)

    # Time

    @property
    def now(self) -> float:
        """The current fake time, in seconds."""
        return self.clock.now()

    def next_event_time(self) -> float | None:
        """When the next timer of the manager or of a fake process is due."""
        times = [t for t in (self._deadline, self._next_action_time()) if t is not None]
        return min(times) if times else None

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds``, handling each timer on the way
        at its own time; return the new time."""
        self._check_clock()
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"advance() takes a finite number of seconds >= 0, got {seconds!r}")
        target = self.now + seconds
        while True:
            upcoming = self.next_event_time()
            if upcoming is None or upcoming > target:
                break
            self.clock.jump_to(upcoming)
            self._settle()
        return self.clock.jump_to(target)

    def run_until_idle(
        self, max_seconds: float = DEFAULT_IDLE_LIMIT, max_steps: int = DEFAULT_STEP_LIMIT
    ) -> float:
        """Jump from timer to timer until none is left; return the time.

        Raises ``SimulationLimitError`` if a timer is still due after
        ``max_seconds`` of fake time or ``max_steps`` jumps, as happens
        with a worker that keeps crashing. A live worker of a service with
        a ``heartbeat_timeout`` or a ``max_age`` always has a timer due:
        move time with ``advance`` instead.
        """
        self._check_clock()
        limit = self.now + max_seconds
        for _ in range(max_steps):
            upcoming = self.next_event_time()
            if upcoming is None:
                return self.now
            if upcoming > limit:
                break
            self.clock.jump_to(upcoming)
            self._settle()
        else:
            if self.next_event_time() is None:
                return self.now
        raise SimulationLimitError(
            self._describe(f"still busy after {max_seconds} s of fake time or {max_steps} steps")
        )

    # Observing

    @property
    def phase(self) -> ManagerPhase:
        """The phase of the manager."""
        return self.supervisor.phase

    @property
    def exit_status(self) -> int | None:
        """The manager's exit status, or None while it runs."""
        return self._exit_status

    @property
    def log(self) -> list[SimRecord]:
        """What happened so far, oldest first."""
        return list(self._log)

    def records(self, kind: type[R]) -> list[R]:
        """Return the records of one type, oldest first."""
        return [record for record in self._log if isinstance(record, kind)]

    def log_text(self, last: int | None = None) -> str:
        """Return the log as lines of text, the ``last`` ones only if given."""
        records = self._log if last is None else self._log[-last:]
        return "\n".join(str(record) for record in records)

    def status(self) -> ManagerStatus:
        """Return the manager's status now, as its listeners would get it."""
        return self.supervisor.status(self.now)

    def restarts(self, service: ServiceRef | None = None) -> int:
        """Count the deaths that the manager did not request, of a service or of all.

        The count is that of ``status()``: the slots that are gone, as
        after the manager has stopped, count no more.
        """
        status = self.status()
        if service is None:
            return status.restarts
        service_id = self.service_id(service)
        return sum(s.restarts for s in status.services if s.service_id == service_id)

    def processes(self, service: ServiceRef | None = None) -> dict[tuple[str, int], FakeProcess]:
        """Map (service name, worker id) to the live fake process of each slot.

        During a rolling reload a slot has two live processes: the map keeps
        the older one until it exits (see ``replacement``).
        """
        wanted = None if service is None else self.service_id(service)
        found: dict[tuple[str, int], FakeProcess] = {}
        for process in sorted(self._live.values(), key=lambda p: (p.service, p.worker_id, p.pid)):
            if wanted is None or process.service_id == wanted:
                found.setdefault((process.service, process.worker_id), process)
        return found

    @property
    def all_processes(self) -> list[FakeProcess]:
        """Every fake process started so far, live or not, oldest first."""
        return list(self._all)

    def process(self, service: ServiceRef, worker_id: int) -> FakeProcess:
        """Return the live fake process of a slot; raise LookupError if none.

        During a rolling reload, this is the older of the slot's two
        processes, until it exits.
        """
        service_id = self.service_id(service)
        found = self._slot_processes(service_id, worker_id)
        if found:
            return found[0]
        live = ", ".join(f"{s}({w}) pid {p.pid}" for (s, w), p in self.processes().items())
        raise LookupError(
            f"no live worker {self._name(service_id)}({worker_id}) at t={self.now:.3f}; "
            f"live workers: {live or 'none'}"
        )

    def replacement(self, service: ServiceRef, worker_id: int) -> FakeProcess:
        """Return the live replacement of a slot in a rolling reload: the
        newer of its two processes. Raise LookupError if it has none."""
        service_id = self.service_id(service)
        found = self._slot_processes(service_id, worker_id)
        if len(found) < 2:
            raise LookupError(
                f"worker {self._name(service_id)}({worker_id}) has no live replacement "
                f"at t={self.now:.3f}; its live processes: {[p.pid for p in found]}"
            )
        return found[-1]

    def pid(self, service: ServiceRef, worker_id: int) -> int:
        """Return the pid of the live fake process of a slot."""
        return self.process(service, worker_id).pid

    def service_id(self, service: ServiceRef) -> ServiceId:
        """Return the id of a service given by name, id or class; raise
        LookupError if unknown."""
        if isinstance(service, uuid.UUID):
            if service not in self._services:
                raise LookupError(f"no service has the id {service}")
            return service
        if isinstance(service, type):
            service = service_name(service)
        found = [sid for sid, entry in self._services.items() if entry.spec.name == service]
        if not found:
            names = sorted(entry.spec.name for entry in self._services.values())
            raise LookupError(f"no service named {service!r}; services: {names}")
        if len(found) > 1:
            raise LookupError(
                f"{len(found)} services are named {service!r}: pass the id that add() returned"
            )
        return found[0]

    # Carrying out the supervisor's commands

    def _feed(self, event: Event) -> None:
        pending: collections.deque[Event] = collections.deque([event])
        while pending:
            step = self.supervisor.handle(pending.popleft(), self.now)
            self._deadline = step.deadline
            for command in step.commands:
                follow_up = self._carry_out(command)
                if follow_up is not None:
                    pending.append(follow_up)

    def _carry_out(self, command: Command) -> Event | None:
        if isinstance(command, SpawnWorker):
            return self._spawn(command.slot)
        if isinstance(command, SignalWorker):
            self._signal(command)
        elif isinstance(command, KillWorker):
            process = self._live[command.pid]
            self._log.append(
                WorkerKilled(
                    self.now, process.service, process.worker_id, process.pid, command.waited
                )
            )
            self._end(process, _KILL_STATUS)
            return WorkerExited(process.pid, _KILL_STATUS)
        elif isinstance(command, RunReloadHooks):
            cancelled = self._reloads_to_cancel > 0
            if cancelled:
                self._reloads_to_cancel -= 1
            self._log.append(HooksRun(self.now, "on_reload", cancelled_reload=cancelled))
            return ReloadHooksDone(cancelled)
        elif isinstance(command, ExitManager):
            self._exit_status = command.status
            self._log.append(ManagerExited(self.now, command.status))
        else:
            self._log.append(self._record_of(command))
        return None

    def _record_of(
        self,
        command: RunTerminateHooks
        | ReportWorkerExit
        | ReportSpawnFailure
        | ReportServiceEnded
        | AnnounceReady
        | AnnounceReloading
        | AnnounceReloaded
        | AnnounceStopping,
    ) -> SimRecord:
        """Return the log record of a command that only reports or announces."""
        now = self.now
        if isinstance(command, RunTerminateHooks):
            return HooksRun(now, "on_terminate")
        if isinstance(command, ReportWorkerExit):
            slot = command.slot
            return WorkerEnded(
                now,
                self._name(slot.service_id),
                slot.worker_id,
                command.pid,
                command.exit_code,
                command.stop_reason,
                command.respawn_delay,
            )
        if isinstance(command, ReportSpawnFailure):
            slot = command.slot
            return WorkerStartFailed(
                now,
                self._name(slot.service_id),
                slot.worker_id,
                command.reason,
                command.retry_delay,
            )
        if isinstance(command, ReportServiceEnded):
            return ServiceEnded(now, self._name(command.service_id), command.state)
        if isinstance(command, AnnounceReloaded):
            return ManagerAnnounced(
                now, "reloaded", cancelled_reload=command.cancelled, failed_reload=command.failed
            )
        return ManagerAnnounced(now, _ANNOUNCEMENTS[type(command)])

    def _spawn(self, slot: Slot) -> Event:
        service = self._services[slot.service_id]
        failure = self._take_spawn_failure(slot.service_id)
        if failure is not None:
            return SpawnFailed(slot, failure)
        process = FakeProcess(
            pid=next(self._pids),
            service=service.spec.name,
            service_id=slot.service_id,
            worker_id=slot.worker_id,
            started_at=self.now,
        )
        self._live[process.pid] = process
        self._all.append(process)
        self._log.append(WorkerStarted(self.now, process.service, slot.worker_id, process.pid))
        behaviour = service.behaviour
        self._schedule(behaviour.ready_after, _Action(_ActionKind.READY, process.pid))
        self._schedule(
            behaviour.crash_after, _Action(_ActionKind.EXIT, process.pid, behaviour.crash_code)
        )
        if service.spec.heartbeat_timeout is not None and behaviour.hang_after != 0:
            self._schedule(0.0, _Action(_ActionKind.HEARTBEAT, process.pid))
        return WorkerSpawned(slot, process.pid)

    def _take_spawn_failure(self, service_id: ServiceId) -> str | None:
        for key in (service_id, None):
            entry = self._spawn_failures.get(key)
            if entry is None:
                continue
            times, reason = entry
            if times is not None:
                if times > 1:
                    self._spawn_failures[key] = (times - 1, reason)
                else:
                    del self._spawn_failures[key]
            return reason
        return None

    def _signal(self, command: SignalWorker) -> None:
        process = self._live[command.pid]
        process.signals.append(command.signal)
        self._log.append(
            WorkerSignalled(
                self.now,
                process.service,
                process.worker_id,
                process.pid,
                command.signal,
                command.reason,
            )
        )
        behaviour = self._services[process.service_id].behaviour
        if command.signal is WorkerSignal.TERMINATE:
            self._schedule(behaviour.stop_after, _Action(_ActionKind.EXIT, process.pid, 0))
        elif command.signal is WorkerSignal.INTERRUPT:
            self._schedule(
                behaviour.interrupt_after,
                _Action(_ActionKind.EXIT, process.pid, _INTERRUPTED_STATUS),
            )
        elif command.signal is WorkerSignal.RELOAD:
            self._schedule(behaviour.reload_after, _Action(_ActionKind.RELOADED, process.pid))
        else:
            assert_never(command.signal)

    def _report(self, process: FakeProcess, report: WorkerReport) -> None:
        if report is WorkerReport.READY:
            process.ready = True
            self._log.append(WorkerReady(self.now, process.service, process.worker_id, process.pid))
        else:
            self._log.append(
                WorkerReloaded(self.now, process.service, process.worker_id, process.pid)
            )
        self._feed(WorkerReported(process.pid, report))

    def _beat(self, process: FakeProcess) -> None:
        """Send a heartbeat of the worker's own, then schedule its next one."""
        service = self._services[process.service_id]
        timeout = service.spec.heartbeat_timeout
        hang_after = service.behaviour.hang_after
        if timeout is None or (
            hang_after is not None and self.now >= process.started_at + hang_after
        ):
            return
        self._schedule(
            timeout / HEARTBEATS_PER_TIMEOUT, _Action(_ActionKind.HEARTBEAT, process.pid)
        )
        self._feed(WorkerReported(process.pid, WorkerReport.HEARTBEAT))

    def _end(self, process: FakeProcess, code: int) -> None:
        process.exit_code = code
        process.ended_at = self.now
        del self._live[process.pid]

    # Timers

    def _schedule(self, delay: float | None, action: _Action) -> None:
        if delay is not None:
            heapq.heappush(self._actions, (self.now + delay, next(self._sequence), action))

    def _next_action_time(self) -> float | None:
        # Actions of processes that have exited since are dropped unrun.
        while self._actions and self._actions[0][2].pid not in self._live:
            heapq.heappop(self._actions)
        return self._actions[0][0] if self._actions else None

    def _check_clock(self) -> None:
        """Raise RuntimeError if a timer was due before the clock's time.

        Every call of the simulator handles the timers due by its end. A
        timer in the past means that the clock moved outside the simulator,
        as ``advance()`` on a shared clock does, and would run late.
        """
        upcoming = self.next_event_time()
        if upcoming is not None and upcoming < self.now:
            raise RuntimeError(
                f"a timer of the simulator was due at {upcoming:.3f} s, but its clock is "
                f"already at {self.now:.3f} s: the clock was moved outside the simulator, "
                "so the timer would run late. Move time with simulator.advance() or "
                "simulator.run_until_idle(), not with the clock's advance() or jump_to()"
            )

    def _settle(self) -> None:
        """Handle every timer due now: the manager's first, then the processes'."""
        for _ in range(DEFAULT_STEP_LIMIT):
            now = self.now
            if self._deadline is not None and self._deadline <= now:
                self._feed(TimerFired())
                continue
            when = self._next_action_time()
            if when is None or when > now:
                return
            _, _, action = heapq.heappop(self._actions)
            self._run_action(action)
        raise SimulationLimitError(self._describe("timers keep coming due at the same time"))

    def _run_action(self, action: _Action) -> None:
        process = self._live[action.pid]
        if action.kind is _ActionKind.READY:
            self._report(process, WorkerReport.READY)
        elif action.kind is _ActionKind.RELOADED:
            self._report(process, WorkerReport.RELOADED)
        elif action.kind is _ActionKind.HEARTBEAT:
            self._beat(process)
        elif action.kind is _ActionKind.EXIT:
            self._end(process, action.exit_code)
            self._feed(WorkerExited(process.pid, action.exit_code))
        else:
            assert_never(action.kind)

    # Helpers

    def _slot_processes(self, service_id: ServiceId, worker_id: int) -> list[FakeProcess]:
        """Return the live processes of a slot, oldest first (pids only grow)."""
        return sorted(
            (
                process
                for process in self._live.values()
                if process.service_id == service_id and process.worker_id == worker_id
            ),
            key=lambda process: process.pid,
        )

    def _target(self, service: ServiceRef, worker_id: int, *, replacement: bool) -> FakeProcess:
        if replacement:
            return self.replacement(service, worker_id)
        return self.process(service, worker_id)

    def _name(self, service_id: ServiceId) -> str:
        service = self._services.get(service_id)
        return service.spec.name if service is not None else str(service_id)

    def _describe(self, problem: str) -> str:
        live = "\n".join(f"  {process!r}" for process in self.processes().values())
        return (
            f"{problem} in {self!r}\n"
            f"next timer at: {self.next_event_time()}\n"
            f"live processes:\n{live or '  (none)'}\n"
            f"log tail:\n{self.log_text(last=_LOG_TAIL)}"
        )
