"""The supervisor state machine: events and the time in, commands out.

``Supervisor.handle`` takes one event and the current time, updates the
state of the manager and of every worker slot, and returns the commands that
the runtime must carry out, with the next time at which the supervisor wants
to be called again (``TimerFired``), or None when nothing is due. It does no
I/O, never reads a clock and never sleeps, so that every policy can be tested
with a fake clock in microseconds.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import final

import attrs

from cotyledon.core._commands import AnnounceReady
from cotyledon.core._commands import AnnounceReloaded
from cotyledon.core._commands import AnnounceReloading
from cotyledon.core._commands import AnnounceStopping
from cotyledon.core._commands import Command
from cotyledon.core._commands import ExitManager
from cotyledon.core._commands import KillWorker
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
from cotyledon.core._ids import ServiceId
from cotyledon.core._ids import Slot
from cotyledon.core._lifecycle import ManagerPhase
from cotyledon.core._lifecycle import SlotState
from cotyledon.core._lifecycle import SlotTrigger
from cotyledon.core._lifecycle import check_phase_move
from cotyledon.core._lifecycle import check_slot_move
from cotyledon.core._reload import reload_request
from cotyledon.core._respawn import RespawnLimiter
from cotyledon.core._respawn import RespawnPolicy
from cotyledon.core._scheduler import is_wanted
from cotyledon.core._scheduler import missing_slots
from cotyledon.core._scheduler import surplus_slots
from cotyledon.core._shutdown import stop_deadline
from cotyledon.core._spec import ServiceSpec
from cotyledon.core._status import ManagerStatus
from cotyledon.core._status import ServiceStatus
from cotyledon.core._status import WorkerStatus
from cotyledon.core._utils import assert_never


@attrs.frozen
class Step:
    """The outcome of one event: commands to carry out, in order, and the
    time of the next ``TimerFired`` (None: wait for the next event)."""

    commands: tuple[Command, ...]
    deadline: float | None


@attrs.frozen
class SlotView:
    """A read-only snapshot of one worker slot."""

    slot: Slot
    state: SlotState
    pid: int | None
    stop_reason: StopReason | None
    respawn_at: float | None
    """When a BACKING_OFF slot spawns its next worker."""
    deadline: float | None
    """When a STOPPING worker is killed; None: never."""


@attrs.define
class _SlotRecord:
    slot: Slot
    state: SlotState
    pid: int | None = None
    respawn_at: float | None = None
    deadline: float | None = None
    stop_started: float | None = None
    stop_reason: StopReason | None = None
    ready: bool = False
    started_at: float | None = None
    restarts: int = 0
    last_exit_code: int | None = None

    def view(self) -> SlotView:
        return SlotView(
            self.slot,
            self.state,
            self.pid,
            self.stop_reason,
            self.respawn_at,
            self.deadline,
        )


@final
class Supervisor:
    """The state of a manager and its worker slots, moved by events.

    ``random`` returns numbers in [0, 1) for the jitter of the respawn
    backoff.
    """

    def __init__(
        self,
        specs: Iterable[ServiceSpec] = (),
        *,
        random: Callable[[], float],
        respawn_policy: RespawnPolicy | None = None,
    ) -> None:
        self._specs: dict[ServiceId, ServiceSpec] = {}
        for spec in specs:
            self._add_spec(spec)
        self._limiter = RespawnLimiter(respawn_policy or RespawnPolicy(), random)
        self._phase = ManagerPhase.NEW
        self._records: dict[Slot, _SlotRecord] = {}
        self._slots_by_pid: dict[int, Slot] = {}
        # Heap of (time, sequence, slot). An entry is stale once its slot's
        # respawn time or deadline has changed; stale entries are skipped
        # when they reach the top. The sequence number keeps the order of
        # equal times deterministic: first scheduled, first served.
        self._timers: list[tuple[float, int, Slot]] = []
        self._sequence = itertools.count()
        self._announced_ready = False
        # Slots whose worker has yet to finish the reload in progress; None
        # while no reload is in progress.
        self._reloading: set[Slot] | None = None
        self._reload_hooks_running = False
        self._revision = 0

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for record in self._records.values():
            counts[record.state.value] = counts.get(record.state.value, 0) + 1
        states = " ".join(f"{name}={count}" for name, count in sorted(counts.items()))
        return (
            f"<Supervisor phase={self._phase.value} services={len(self._specs)} "
            f"slots={len(self._records)}{' ' + states if states else ''}>"
        )

    @property
    def phase(self) -> ManagerPhase:
        """The state of the manager."""
        return self._phase

    @property
    def specs(self) -> Mapping[ServiceId, ServiceSpec]:
        """The services, in the order they were added."""
        return dict(self._specs)

    @property
    def revision(self) -> int:
        """A number that changes whenever the status would."""
        return self._revision

    def status(self, now: float) -> ManagerStatus:
        """Return a snapshot of the manager and its workers at time ``now``."""
        by_service: dict[ServiceId, list[WorkerStatus]] = {sid: [] for sid in self._specs}
        for slot in sorted(self._records):
            record = self._records[slot]
            uptime = None if record.started_at is None else now - record.started_at
            by_service.setdefault(slot.service_id, []).append(
                WorkerStatus(
                    worker_id=slot.worker_id,
                    state=record.state,
                    pid=record.pid,
                    ready=record.ready,
                    restarts=record.restarts,
                    uptime=uptime,
                    last_exit_code=record.last_exit_code,
                )
            )
        services = tuple(
            ServiceStatus(spec.service_id, spec.name, spec.workers, tuple(by_service[sid]))
            for sid, spec in self._specs.items()
        )
        return ManagerStatus(self._phase, self._announced_ready, services)

    def spec(self, service_id: ServiceId) -> ServiceSpec | None:
        """Return the spec of a service, or None for an unknown id."""
        return self._specs.get(service_id)

    def slots(self) -> dict[Slot, SlotView]:
        """Return a snapshot of every slot that has a record."""
        return {slot: record.view() for slot, record in self._records.items()}

    def slot_of_pid(self, pid: int) -> Slot | None:
        """Return the slot whose live process has this pid, if any."""
        return self._slots_by_pid.get(pid)

    def failures(self, slot: Slot) -> int:
        """Return how many times in a row the slot's worker died early."""
        return self._limiter.failures(slot)

    def handle(self, event: Event, now: float) -> Step:  # noqa: PLR0912 - one branch per event
        """Apply one event at time ``now``; return what to do next."""
        out: list[Command] = []
        if isinstance(event, Start):
            self._on_start(now)
        elif isinstance(event, ServiceAdded):
            self._on_service_added(event.spec, now)
        elif isinstance(event, WorkersChanged):
            self._on_workers_changed(event.service_id, event.workers, now, out)
        elif isinstance(event, ShutdownTimeoutChanged):
            self._on_timeout_changed(event.service_id, event.graceful_shutdown_timeout)
        elif isinstance(event, WorkerSpawned):
            self._on_spawned(event.slot, event.pid, now, out)
        elif isinstance(event, SpawnFailed):
            self._on_spawn_failed(event.slot, event.reason, now, out)
        elif isinstance(event, WorkerExited):
            self._on_exited(event.pid, event.exit_code, now, out)
        elif isinstance(event, WorkerReported):
            self._on_reported(event.pid, event.report)
        elif isinstance(event, StopRequested):
            self._on_stop(event.mode, now, out)
        elif isinstance(event, ReloadRequested):
            self._on_reload(out)
        elif isinstance(event, ReloadHooksDone):
            self._on_reload_hooks_done(event.cancelled, now, out)
        elif isinstance(event, TimerFired):
            pass  # the due timers run below, as after every event
        else:
            assert_never(event)
        self._run_due_timers(now, out)
        self._announce(out)
        self._finish_if_done(out)
        return Step(tuple(out), self._next_deadline())

    # Events

    def _on_start(self, now: float) -> None:
        if self._phase is not ManagerPhase.NEW:
            return
        self._move_phase(ManagerPhase.RUNNING)
        for spec in self._specs.values():
            self._create_missing_slots(spec, now)

    def _on_service_added(self, spec: ServiceSpec, now: float) -> None:
        self._add_spec(spec)
        if self._phase is ManagerPhase.RUNNING:
            self._create_missing_slots(spec, now)

    def _on_workers_changed(
        self, service_id: ServiceId, workers: int, now: float, out: list[Command]
    ) -> None:
        if service_id not in self._specs:
            raise ValueError(f"unknown service id {service_id}")
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers!r}")
        spec = attrs.evolve(self._specs[service_id], workers=workers)
        self._specs[service_id] = spec
        if self._phase is not ManagerPhase.RUNNING:
            return
        self._create_missing_slots(spec, now)
        present = [slot.worker_id for slot in self._records if slot.service_id == service_id]
        for slot in surplus_slots(spec, present):
            self._stop(self._records[slot], StopReason.RETIRE, now, out)

    def _on_timeout_changed(self, service_id: ServiceId, timeout: float | None) -> None:
        spec = self._specs.get(service_id)
        if spec is None:
            raise ValueError(f"unknown service id {service_id}")
        self._specs[service_id] = attrs.evolve(spec, graceful_shutdown_timeout=timeout)

    def _on_spawned(self, slot: Slot, pid: int, now: float, out: list[Command]) -> None:
        record = self._records[slot]
        self._move_slot(record, SlotTrigger.SPAWNED, SlotState.RUNNING)
        record.pid = pid
        record.respawn_at = None
        record.started_at = now
        self._slots_by_pid[pid] = slot
        self._limiter.record_start(slot, now)

        # The phase or the worker count may have changed since the spawn
        # was requested: the new worker then stops at once.
        if self._phase is ManagerPhase.STOPPING:
            self._stop(record, StopReason.SHUTDOWN, now, out)
        elif self._phase is ManagerPhase.INTERRUPTING:
            self._stop(record, StopReason.INTERRUPT, now, out)
        elif not is_wanted(self._specs.get(slot.service_id), slot):
            self._stop(record, StopReason.RETIRE, now, out)

    def _on_spawn_failed(self, slot: Slot, reason: str, now: float, out: list[Command]) -> None:
        record = self._records[slot]
        if self._wants(slot):
            delay = self._limiter.delay_after_spawn_failure(slot)
            self._move_slot(record, SlotTrigger.SPAWN_FAILED, SlotState.BACKING_OFF)
            self._schedule_respawn(record, now + delay)
            out.append(ReportSpawnFailure(slot, reason, delay))
        else:
            self._move_slot(record, SlotTrigger.SPAWN_FAILED, SlotState.GONE)
            self._drop(record)
            out.append(ReportSpawnFailure(slot, reason, None))

    def _on_exited(self, pid: int, exit_code: int, now: float, out: list[Command]) -> None:
        slot = self._slots_by_pid.pop(pid, None)
        if slot is None:
            return  # not a worker of ours, or already reported
        record = self._records[slot]
        reason = record.stop_reason
        record.pid = None
        record.deadline = None
        record.stop_started = None
        record.stop_reason = None
        record.ready = False
        record.started_at = None
        record.last_exit_code = exit_code
        if self._reloading is not None and reason is not StopReason.RESTART:
            # A worker that died instead of reloading has nothing more to do
            # for this reload; its replacement starts with the new state.
            self._reloading.discard(slot)
        if not self._wants(slot):
            self._move_slot(record, SlotTrigger.EXITED, SlotState.GONE)
            self._drop(record)
            out.append(ReportWorkerExit(slot, pid, exit_code, reason, None))
            return

        # A worker that the supervisor stopped (a restart on reload, a
        # retirement undone by a new worker count) is replaced at once and
        # does not count as a failure of its slot.
        if reason is None:
            record.restarts += 1
        delay = 0.0 if reason is not None else self._limiter.delay_after_exit(slot, now)
        self._move_slot(record, SlotTrigger.EXITED, SlotState.BACKING_OFF)
        out.append(ReportWorkerExit(slot, pid, exit_code, reason, delay))
        self._schedule_respawn(record, now + delay)

    def _on_stop(self, mode: StopMode, now: float, out: list[Command]) -> None:
        if mode is StopMode.GRACEFUL:
            if self._phase not in (ManagerPhase.NEW, ManagerPhase.RUNNING):
                return
            self._move_phase(ManagerPhase.STOPPING)
            out.append(AnnounceStopping())
            out.append(RunTerminateHooks())
            reason = StopReason.SHUTDOWN
        elif mode is StopMode.FAST:
            if self._phase in (ManagerPhase.INTERRUPTING, ManagerPhase.DONE):
                return
            if self._phase is not ManagerPhase.STOPPING:
                out.append(AnnounceStopping())
            self._move_phase(ManagerPhase.INTERRUPTING)
            reason = StopReason.INTERRUPT
        else:
            assert_never(mode)
        for record in list(self._records.values()):
            self._stop(record, reason, now, out)

    def _on_reload(self, out: list[Command]) -> None:
        # A reload whose hooks are still running already covers this one.
        if self._phase is not ManagerPhase.RUNNING or self._reload_hooks_running:
            return
        self._reload_hooks_running = True
        out.append(AnnounceReloading())
        out.append(RunReloadHooks())

    def _on_reload_hooks_done(self, cancelled: bool, now: float, out: list[Command]) -> None:
        # The workers hear of a reload only after the hooks: a hook may
        # reload the configuration that they read, or cancel the reload.
        if not self._reload_hooks_running:
            return
        self._reload_hooks_running = False
        if self._phase is not ManagerPhase.RUNNING:
            return
        if cancelled:
            self._reloading = None
            self._revision += 1
            out.append(AnnounceReloaded(cancelled=True))
            return
        self._reloading = set()
        for record in list(self._records.values()):
            if record.state is not SlotState.RUNNING or record.pid is None:
                continue
            spec = self._specs[record.slot.service_id]
            signal, reason = reload_request(spec.reload_policy)
            self._reloading.add(record.slot)
            if reason is None:
                out.append(SignalWorker(record.slot, record.pid, signal, None))
            else:
                self._stop(record, reason, now, out)
        self._revision += 1

    def _on_reported(self, pid: int, report: WorkerReport) -> None:
        slot = self._slots_by_pid.get(pid)
        if slot is None:
            return  # an exit already reaped, or not a worker of ours
        record = self._records[slot]
        if report is WorkerReport.READY:
            record.ready = True
            if self._reloading is not None and record.stop_reason is None:
                # A replacement started during the reload runs the new state.
                self._reloading.discard(slot)
        elif report is WorkerReport.RELOADED:
            if self._reloading is not None:
                self._reloading.discard(slot)
        else:
            assert_never(report)
        self._revision += 1

    def _announce(self, out: list[Command]) -> None:
        if self._phase is not ManagerPhase.RUNNING:
            return
        if not self._announced_ready and all(record.ready for record in self._records.values()):
            self._announced_ready = True
            self._revision += 1
            out.append(AnnounceReady())
        if self._reloading is not None and not self._reloading:
            self._reloading = None
            self._revision += 1
            out.append(AnnounceReloaded())

    # Slot moves

    def _stop(
        self, record: _SlotRecord, reason: StopReason, now: float, out: list[Command]
    ) -> None:
        """Ask the slot's worker to stop, or drop a slot that has none."""
        state = record.state
        if state is SlotState.BACKING_OFF:
            self._move_slot(record, SlotTrigger.UNWANTED, SlotState.GONE)
            self._drop(record)
        elif state is SlotState.SPAWNING or state is SlotState.KILLING:
            pass  # stopped once spawned; or already being killed
        elif state is SlotState.RUNNING:
            assert record.pid is not None
            self._move_slot(record, SlotTrigger.STOP, SlotState.STOPPING)
            record.stop_reason = reason
            record.stop_started = now
            out.append(SignalWorker(record.slot, record.pid, _signal_for(reason), reason))
            self._schedule_kill(record, stop_deadline(self._spec_of(record), reason, now))
        elif state is SlotState.STOPPING:
            # Only an interrupt overrides a stop in progress: it tells the
            # worker to exit at once and brings its deadline closer.
            if reason is not StopReason.INTERRUPT or record.stop_reason is reason:
                return
            assert record.pid is not None
            self._move_slot(record, SlotTrigger.STOP, SlotState.STOPPING)
            record.stop_reason = reason
            out.append(SignalWorker(record.slot, record.pid, WorkerSignal.INTERRUPT, reason))
            deadline = stop_deadline(self._spec_of(record), reason, now)
            if record.deadline is not None and deadline is not None:
                deadline = min(deadline, record.deadline)
            self._schedule_kill(record, deadline)
        elif state is SlotState.GONE:
            pass
        else:
            assert_never(state)

    def _run_due_timers(self, now: float, out: list[Command]) -> None:
        while self._timers and self._timers[0][0] <= now:
            when, _, slot = heapq.heappop(self._timers)
            record = self._records.get(slot)
            if record is None:
                continue
            if record.state is SlotState.BACKING_OFF and record.respawn_at == when:
                self._move_slot(record, SlotTrigger.RESPAWN_DUE, SlotState.SPAWNING)
                record.respawn_at = None
                out.append(SpawnWorker(slot))
            elif record.state is SlotState.STOPPING and record.deadline == when:
                assert record.pid is not None
                assert record.stop_started is not None
                self._move_slot(record, SlotTrigger.DEADLINE, SlotState.KILLING)
                record.deadline = None
                out.append(KillWorker(slot, record.pid, now - record.stop_started))

    def _finish_if_done(self, out: list[Command]) -> None:
        if self._records:
            return
        if self._phase is ManagerPhase.STOPPING:
            self._move_phase(ManagerPhase.DONE)
            out.append(ExitManager(0))
        elif self._phase is ManagerPhase.INTERRUPTING:
            self._move_phase(ManagerPhase.DONE)
            out.append(ExitManager(1))

    def _next_deadline(self) -> float | None:
        while self._timers:
            when, _, slot = self._timers[0]
            record = self._records.get(slot)
            if record is not None and (
                (record.state is SlotState.BACKING_OFF and record.respawn_at == when)
                or (record.state is SlotState.STOPPING and record.deadline == when)
            ):
                return when
            heapq.heappop(self._timers)
        return None

    # Helpers

    def _add_spec(self, spec: ServiceSpec) -> None:
        if spec.service_id in self._specs:
            raise ValueError(f"service id {spec.service_id} is already in use")
        if spec.workers < 1:
            raise ValueError(
                f"workers must be >= 1 for service {spec.name!r}, got {spec.workers!r}"
            )
        self._specs[spec.service_id] = spec

    def _create_missing_slots(self, spec: ServiceSpec, now: float) -> None:
        present = [slot.worker_id for slot in self._records if slot.service_id == spec.service_id]
        for slot in missing_slots(spec, present):
            record = _SlotRecord(slot, SlotState.BACKING_OFF)
            self._records[slot] = record
            self._schedule_respawn(record, now)

    def _schedule_respawn(self, record: _SlotRecord, when: float) -> None:
        record.respawn_at = when
        heapq.heappush(self._timers, (when, next(self._sequence), record.slot))

    def _schedule_kill(self, record: _SlotRecord, when: float | None) -> None:
        record.deadline = when
        if when is not None:
            heapq.heappush(self._timers, (when, next(self._sequence), record.slot))

    def _wants(self, slot: Slot) -> bool:
        return self._phase is ManagerPhase.RUNNING and is_wanted(
            self._specs.get(slot.service_id), slot
        )

    def _spec_of(self, record: _SlotRecord) -> ServiceSpec | None:
        return self._specs.get(record.slot.service_id)

    def _drop(self, record: _SlotRecord) -> None:
        del self._records[record.slot]
        self._limiter.forget(record.slot)
        if self._reloading is not None:
            self._reloading.discard(record.slot)

    def _move_slot(self, record: _SlotRecord, trigger: SlotTrigger, target: SlotState) -> None:
        check_slot_move(record.state, trigger, target)
        record.state = target
        self._revision += 1

    def _move_phase(self, target: ManagerPhase) -> None:
        check_phase_move(self._phase, target)
        self._phase = target
        self._revision += 1


def _signal_for(reason: StopReason) -> WorkerSignal:
    if reason is StopReason.INTERRUPT:
        return WorkerSignal.INTERRUPT
    return WorkerSignal.TERMINATE
