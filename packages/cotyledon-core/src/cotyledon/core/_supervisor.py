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
import operator
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Final
from typing import final

from cotyledon.core import _record
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
from cotyledon.core._lifecycle import ManagerPhase
from cotyledon.core._lifecycle import SlotState
from cotyledon.core._lifecycle import SlotTrigger
from cotyledon.core._lifecycle import check_phase_move
from cotyledon.core._lifecycle import check_slot_move
from cotyledon.core._record import evolve
from cotyledon.core._reload import reload_request
from cotyledon.core._respawn import RespawnLimiter
from cotyledon.core._respawn import RespawnPolicy
from cotyledon.core._respawn import RestartIntensity
from cotyledon.core._scheduler import is_wanted
from cotyledon.core._scheduler import missing_slots
from cotyledon.core._scheduler import surplus_slots
from cotyledon.core._shutdown import stop_deadline
from cotyledon.core._spec import GiveUpAction
from cotyledon.core._spec import ReloadPolicy
from cotyledon.core._spec import RestartPolicy
from cotyledon.core._spec import ServiceSpec
from cotyledon.core._status import ManagerStatus
from cotyledon.core._status import ReloadOutcome
from cotyledon.core._status import ServiceState
from cotyledon.core._status import ServiceStatus
from cotyledon.core._status import WorkerStatus
from cotyledon.core._utils import assert_never

MAX_AGE_JITTER: Final = 0.1
"""A worker is recycled after its service's ``max_age`` less up to this
fraction of it, so that workers started together are not all replaced at
once."""

ROLLING_READY_TIMEOUT: Final = 60.0
"""Seconds a rolling replacement has to be ready when its service has no
``startup_timeout``."""

# Stop reasons after which the exit counts as a failure of the slot: it is
# restarted with backoff, within the restart intensity.
_FAILED_REASONS: Final = (StopReason.STARTUP_TIMEOUT, StopReason.HUNG)


@_record.record
class Step:
    """The outcome of one event: commands to carry out, in order, and the
    time of the next ``TimerFired`` (None: wait for the next event)."""

    commands: tuple[Command, ...]
    deadline: float | None


@_record.record
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
    ready_by: float | None = None
    """When a RUNNING worker not yet ready is stopped (startup timeout)."""
    silent_by: float | None = None
    """When a RUNNING ready worker without a heartbeat is stopped as hung."""
    recycle_at: float | None = None
    """When a RUNNING worker is stopped for its maximum age."""


@_record.record(frozen=False)
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
    # Deadlines of a RUNNING worker: to report ready, to send its next
    # heartbeat, and to be recycled.
    ready_by: float | None = None
    silent_by: float | None = None
    recycle_at: float | None = None
    # When the supervisor last requested an in-place reload of the worker.
    reload_requested_at: float | None = None

    def running_timer(self, when: float) -> StopReason | None:
        """Return why a RUNNING worker stops if ``when`` is one of its deadlines."""
        if self.state is not SlotState.RUNNING:
            return None
        if self.ready_by == when:
            return StopReason.STARTUP_TIMEOUT
        if self.silent_by == when:
            return StopReason.HUNG
        if self.recycle_at == when:
            return StopReason.MAX_AGE
        return None

    def view(self) -> SlotView:
        return SlotView(
            self.slot,
            self.state,
            self.pid,
            self.stop_reason,
            self.respawn_at,
            self.deadline,
            self.ready_by,
            self.silent_by,
            self.recycle_at,
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
        self._random = random
        self._intensities: dict[ServiceId, RestartIntensity] = {}
        # Services with no worker left to run, and why.
        self._ended: dict[ServiceId, ServiceState] = {}
        self._exit_status: int | None = None
        self._check_ended = False
        # Rolling reloads: the replacement process of a slot, the slots of
        # each service still to replace, and the slot being replaced.
        self._replacements: dict[Slot, _SlotRecord] = {}
        self._rolling: dict[ServiceId, list[Slot]] = {}
        self._rolling_current: dict[ServiceId, Slot] = {}
        self._reload_failed = False
        self._last_reload: ReloadOutcome | None = None
        self._phase = ManagerPhase.NEW
        self._records: dict[Slot, _SlotRecord] = {}
        # The slots that keep the manager from being ready: not ready and
        # not finished. Kept up to date so that each report costs O(1).
        self._unready: set[Slot] = set()
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
        for slot, record in self._records.items():
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
                    kill_in=(
                        max(0.0, record.deadline - now)
                        if record.state is SlotState.STOPPING and record.deadline is not None
                        else None
                    ),
                )
            )
        services = tuple(
            ServiceStatus(
                spec.service_id,
                spec.name,
                spec.workers,
                tuple(sorted(by_service[sid], key=_by_worker_id)),
                self._ended.get(sid, ServiceState.RUNNING),
            )
            for sid, spec in self._specs.items()
        )
        return ManagerStatus(self._phase, self._announced_ready, services, self._last_reload)

    def spec(self, service_id: ServiceId) -> ServiceSpec | None:
        """Return the spec of a service, or None for an unknown id."""
        return self._specs.get(service_id)

    def slots(self) -> dict[Slot, SlotView]:
        """Return a snapshot of every slot that has a record."""
        return {slot: record.view() for slot, record in self._records.items()}

    def replacements(self) -> dict[Slot, SlotView]:
        """Return a snapshot of the replacement processes of a rolling reload."""
        return {slot: record.view() for slot, record in self._replacements.items()}

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
            self._on_reported(event, now, out)
        elif isinstance(event, WorkersReported):
            for reported in event.reports:
                self._on_reported(reported, now, out)
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
        self._end_services(now, out)
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
        spec = evolve(self._specs[service_id], workers=workers)
        self._specs[service_id] = spec
        if self._phase is not ManagerPhase.RUNNING:
            return
        self._create_missing_slots(spec, now)
        present = [slot.worker_id for slot in self._records if slot.service_id == service_id]
        for slot in surplus_slots(spec, present):
            self._stop(self._records[slot], StopReason.RETIRE, now, out)
            replacement = self._replacements.get(slot)
            if replacement is not None:
                self._stop(replacement, StopReason.RETIRE, now, out)

    def _on_timeout_changed(self, service_id: ServiceId, timeout: float | None) -> None:
        spec = self._specs.get(service_id)
        if spec is None:
            raise ValueError(f"unknown service id {service_id}")
        self._specs[service_id] = evolve(spec, graceful_shutdown_timeout=timeout)

    def _on_spawned(self, slot: Slot, pid: int, now: float, out: list[Command]) -> None:
        replacement = self._replacements.get(slot)
        if replacement is not None and replacement.state is SlotState.SPAWNING:
            self._on_replacement_spawned(replacement, pid, now, out)
            return
        record = self._records[slot]
        self._move_slot(record, SlotTrigger.SPAWNED, SlotState.RUNNING)
        record.pid = pid
        record.respawn_at = None
        record.started_at = now
        record.reload_requested_at = None
        self._slots_by_pid[pid] = slot
        self._limiter.record_start(slot, now)

        # The phase or the worker count may have changed since the spawn
        # was requested: the new worker then stops at once.
        if self._phase is ManagerPhase.STOPPING:
            self._stop(record, StopReason.SHUTDOWN, now, out)
        elif self._phase is ManagerPhase.INTERRUPTING:
            self._stop(record, StopReason.INTERRUPT, now, out)
        elif slot.service_id in self._ended:
            self._stop(record, StopReason.GIVE_UP, now, out)
        elif not is_wanted(self._specs.get(slot.service_id), slot):
            self._stop(record, StopReason.RETIRE, now, out)
        else:
            spec = self._specs[slot.service_id]
            if spec.startup_timeout is not None:
                record.ready_by = now + spec.startup_timeout
                self._push_timer(record, record.ready_by)
            self._arm_max_age(record, spec, now)

    def _arm_max_age(self, record: _SlotRecord, spec: ServiceSpec, started_at: float) -> None:
        if spec.max_age is not None:
            age = spec.max_age * (1.0 - MAX_AGE_JITTER * self._random())
            record.recycle_at = started_at + age
            self._push_timer(record, record.recycle_at)

    def _on_replacement_spawned(
        self, record: _SlotRecord, pid: int, now: float, out: list[Command]
    ) -> None:
        self._move_slot(record, SlotTrigger.SPAWNED, SlotState.RUNNING)
        record.pid = pid
        record.started_at = now
        self._slots_by_pid[pid] = record.slot
        if self._phase is ManagerPhase.STOPPING:
            self._stop(record, StopReason.SHUTDOWN, now, out)
        elif self._phase is ManagerPhase.INTERRUPTING:
            self._stop(record, StopReason.INTERRUPT, now, out)
        elif not self._wants(record.slot):
            self._stop(record, StopReason.RETIRE, now, out)
        else:
            spec = self._specs[record.slot.service_id]
            timeout = spec.startup_timeout
            record.ready_by = now + (ROLLING_READY_TIMEOUT if timeout is None else timeout)
            self._push_timer(record, record.ready_by)

    def _on_spawn_failed(self, slot: Slot, reason: str, now: float, out: list[Command]) -> None:
        replacement = self._replacements.get(slot)
        if replacement is not None and replacement.state is SlotState.SPAWNING:
            self._move_slot(replacement, SlotTrigger.SPAWN_FAILED, SlotState.GONE)
            del self._replacements[slot]
            out.append(ReportSpawnFailure(slot, reason, None))
            self._fail_rolling(slot.service_id)
            return
        record = self._records[slot]
        if self._wants(slot):
            delay = self._limiter.delay_after_spawn_failure(slot)
            self._move_slot(record, SlotTrigger.SPAWN_FAILED, SlotState.BACKING_OFF)
            self._schedule_respawn(record, now + delay)
            out.append(ReportSpawnFailure(slot, reason, delay))
        else:
            target = self._unwanted_target(slot)
            self._move_slot(record, SlotTrigger.SPAWN_FAILED, target)
            if target is SlotState.GONE:
                self._drop(record)
            out.append(ReportSpawnFailure(slot, reason, None))

    def _on_exited(self, pid: int, exit_code: int, now: float, out: list[Command]) -> None:
        slot = self._slots_by_pid.pop(pid, None)
        if slot is None:
            return  # not a worker of ours, or already reported
        replacement = self._replacements.get(slot)
        if replacement is not None and replacement.pid == pid:
            self._on_replacement_exited(replacement, exit_code, out)
            return
        record = self._records[slot]
        reason = record.stop_reason
        record.pid = None
        record.deadline = None
        record.stop_started = None
        record.stop_reason = None
        record.ready = False
        self._note_readiness(record)
        record.started_at = None
        record.last_exit_code = exit_code
        self._clear_running_timers(record)
        if self._reloading is not None and reason is not StopReason.RESTART:
            # A worker that died instead of reloading has nothing more to do
            # for this reload; its replacement starts with the new state.
            self._reloading.discard(slot)
        self._decide_after_exit(record, replacement, pid, exit_code, reason, now, out)

    def _decide_after_exit(  # noqa: PLR0917 - the facts of one exit
        self,
        record: _SlotRecord,
        replacement: _SlotRecord | None,
        pid: int,
        exit_code: int,
        reason: StopReason | None,
        now: float,
        out: list[Command],
    ) -> None:
        """Replace, hand over, finish or drop a slot whose worker exited."""
        slot = record.slot
        spec = self._specs.get(slot.service_id)
        if reason is None and spec is not None and spec.stop_manager_on_exit and self._wants(slot):
            self._end_slot(
                record, SlotState.GONE, pid=pid, exit_code=exit_code, reason=reason, out=out
            )
            self._stop_manager(StopMode.GRACEFUL, now, out, status=_exit_status_of(exit_code))
            return
        if not self._wants(slot):
            self._end_slot(
                record,
                self._unwanted_target(slot),
                pid=pid,
                exit_code=exit_code,
                reason=reason,
                out=out,
            )
            return
        assert spec is not None
        if replacement is not None and replacement.state in (SlotState.SPAWNING, SlotState.RUNNING):
            # A replacement being stopped (not ready in time) takes nothing
            # over: the slot gets a worker of its own, as after any exit.
            self._hand_over(
                record, replacement, pid=pid, exit_code=exit_code, reason=reason, now=now, out=out
            )
            return

        # A worker that the supervisor stopped (a restart on reload, a
        # retirement undone by a new worker count, its maximum age) is
        # replaced at once and does not count as a failure of its slot. One
        # stopped for a missed deadline failed, whatever its exit status.
        failed = reason in _FAILED_REASONS
        if reason is None or failed:
            if _ends_for_good(spec, exit_code, failed=failed):
                self._end_slot(
                    record, SlotState.FINISHED, pid=pid, exit_code=exit_code, reason=reason, out=out
                )
                return
            if not self._within_intensity(spec, now):
                self._give_up(
                    spec, record, pid=pid, exit_code=exit_code, reason=reason, now=now, out=out
                )
                return
            record.restarts += 1
            delay = self._limiter.delay_after_exit(slot, now)
        else:
            delay = 0.0
        self._move_slot(record, SlotTrigger.EXITED, SlotState.BACKING_OFF)
        out.append(ReportWorkerExit(slot, pid, exit_code, reason, delay))
        self._schedule_respawn(record, now + delay)

    def _on_replacement_exited(
        self, record: _SlotRecord, exit_code: int, out: list[Command]
    ) -> None:
        """A replacement ended before it took over: the rolling reload of its
        service fails, unless the manager or the slot had stopped it."""
        assert record.pid is not None
        reason = record.stop_reason
        self._move_slot(record, SlotTrigger.EXITED, SlotState.GONE)
        del self._replacements[record.slot]
        out.append(ReportWorkerExit(record.slot, record.pid, exit_code, reason, None))
        if self._phase is ManagerPhase.RUNNING and reason is not StopReason.RETIRE:
            self._fail_rolling(record.slot.service_id)

    def _hand_over(
        self,
        record: _SlotRecord,
        replacement: _SlotRecord,
        *,
        pid: int,
        exit_code: int,
        reason: StopReason | None,
        now: float,
        out: list[Command],
    ) -> None:
        """Make the replacement the slot's process once the old one exited."""
        slot = record.slot
        self._move_slot(record, SlotTrigger.HANDED_OVER, replacement.state)
        del self._replacements[slot]
        record.pid = replacement.pid
        record.started_at = replacement.started_at
        record.ready = replacement.ready
        self._note_readiness(record)
        record.ready_by = replacement.ready_by
        record.silent_by = replacement.silent_by
        out.append(ReportWorkerExit(slot, pid, exit_code, reason, 0.0))
        if record.started_at is not None:
            self._limiter.record_start(slot, record.started_at)
            self._arm_max_age(record, self._specs[slot.service_id], record.started_at)
        if record.ready and self._reloading is not None:
            self._reloading.discard(slot)
        self._advance_rolling(slot.service_id, out)

    def _fail_rolling(self, service_id: ServiceId) -> None:
        """Give up the rolling reload of a service: its old workers stay."""
        self._reload_failed = True
        remaining = self._rolling.pop(service_id, [])
        current = self._rolling_current.pop(service_id, None)
        if current is not None:
            remaining.append(current)
        if self._reloading is not None:
            self._reloading.difference_update(remaining)

    def _advance_rolling(self, service_id: ServiceId, out: list[Command]) -> None:
        """Start the next replacement of a service's rolling reload, if due."""
        if self._phase is not ManagerPhase.RUNNING or any(
            slot.service_id == service_id for slot in self._replacements
        ):
            return
        current = self._rolling_current.pop(service_id, None)
        if current is not None:
            record = self._records.get(current)
            if record is not None and record.state is SlotState.RUNNING and not record.ready:
                # The slot's new process took over before it was ready.
                self._rolling_current[service_id] = current
                return
        queue = self._rolling.get(service_id, [])
        while queue:
            slot = queue.pop(0)
            record = self._records.get(slot)
            if record is None or record.state is not SlotState.RUNNING or not self._wants(slot):
                # Its next process starts with the new state anyway.
                if self._reloading is not None:
                    self._reloading.discard(slot)
                continue
            self._replacements[slot] = _SlotRecord(slot, SlotState.SPAWNING)
            self._rolling_current[service_id] = slot
            self._revision += 1
            out.append(SpawnWorker(slot))
            return
        self._rolling.pop(service_id, None)

    def _end_slot(
        self,
        record: _SlotRecord,
        target: SlotState,
        *,
        pid: int,
        exit_code: int,
        reason: StopReason | None,
        out: list[Command],
    ) -> None:
        """Move a slot whose worker exited to FINISHED or GONE, and report the exit."""
        self._move_slot(record, SlotTrigger.EXITED, target)
        if target is SlotState.GONE:
            self._drop(record)
        out.append(ReportWorkerExit(record.slot, pid, exit_code, reason, None))

    def _within_intensity(self, spec: ServiceSpec, now: float) -> bool:
        if spec.max_restarts is None:
            return True
        intensity = self._intensities.get(spec.service_id)
        if intensity is None:
            intensity = RestartIntensity(*spec.max_restarts)
            self._intensities[spec.service_id] = intensity
        return intensity.allow(now)

    def _give_up(
        self,
        spec: ServiceSpec,
        record: _SlotRecord,
        *,
        pid: int,
        exit_code: int,
        reason: StopReason | None,
        now: float,
        out: list[Command],
    ) -> None:
        """End a service that restarted past its intensity, then apply its action."""
        service_id = spec.service_id
        self._ended[service_id] = ServiceState.GIVEN_UP
        self._revision += 1
        self._end_slot(
            record,
            self._unwanted_target(record.slot),
            pid=pid,
            exit_code=exit_code,
            reason=reason,
            out=out,
        )
        out.append(ReportServiceEnded(service_id, ServiceState.GIVEN_UP))
        if spec.on_give_up is GiveUpAction.STOP:
            self._stop_manager(StopMode.GRACEFUL, now, out, status=GIVE_UP_EXIT_STATUS)
            return
        self._rolling.pop(service_id, None)
        self._rolling_current.pop(service_id, None)
        for other in self._all_records():
            if other.slot.service_id == service_id:
                self._stop(other, StopReason.GIVE_UP, now, out)

    def _on_stop(self, mode: StopMode, now: float, out: list[Command]) -> None:
        self._stop_manager(mode, now, out)

    def _stop_manager(
        self, mode: StopMode, now: float, out: list[Command], *, status: int | None = None
    ) -> None:
        """Stop every worker; ``status``, when given, is the manager's exit status."""
        if (
            status is not None
            and self._exit_status is None
            and self._phase
            in (
                ManagerPhase.NEW,
                ManagerPhase.RUNNING,
            )
        ):
            self._exit_status = status
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
        for record in self._all_records():
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
            # Only this request is cancelled: the workers still running an
            # earlier reload go on, and its end is announced in turn.
            self._revision += 1
            self._last_reload = ReloadOutcome.CANCELLED
            out.append(AnnounceReloaded(cancelled=True))
            return
        self._reloading = set()
        self._reload_failed = False
        for record in list(self._records.values()):
            if record.state is not SlotState.RUNNING or record.pid is None:
                continue
            spec = self._specs[record.slot.service_id]
            signal, reason = reload_request(spec.reload_policy)
            self._reloading.add(record.slot)
            if spec.reload_policy is ReloadPolicy.ROLLING:
                queue = self._rolling.setdefault(record.slot.service_id, [])
                if record.slot not in queue:
                    queue.append(record.slot)
            elif reason is None:
                record.reload_requested_at = now
                out.append(SignalWorker(record.slot, record.pid, signal, None))
            else:
                self._stop(record, reason, now, out)
        for service_id in list(self._rolling):
            self._advance_rolling(service_id, out)
        self._revision += 1

    def _on_reported(self, reported: WorkerReported, now: float, out: list[Command]) -> None:
        pid, report = reported.pid, reported.report
        slot = self._slots_by_pid.get(pid)
        if slot is None:
            return  # an exit already reaped, or not a worker of ours
        spec = self._specs.get(slot.service_id)
        replacement = self._replacements.get(slot)
        if replacement is not None and replacement.pid == pid:
            self._on_replacement_reported(replacement, spec, report, now, out)
            return
        record = self._records[slot]
        if report is WorkerReport.TERMINATING:
            self._on_terminating(record, spec, now)
            return
        if report is WorkerReport.HEARTBEAT:
            # The liveness check starts once the worker is ready; a stopping
            # worker is bounded by its stop deadline instead.
            if record.ready and record.silent_by is not None:
                self._arm_heartbeat(record, spec, now)
            return
        if report is WorkerReport.READY:
            self._on_ready(record, spec, now, out)
        elif report is WorkerReport.RELOADED:
            self._on_reloaded(record, reported.received_at)
        else:
            assert_never(report)

    def _on_ready(
        self, record: _SlotRecord, spec: ServiceSpec | None, now: float, out: list[Command]
    ) -> None:
        slot = record.slot
        if not record.ready and record.state is SlotState.RUNNING:
            record.ready_by = None
            self._arm_heartbeat(record, spec, now)
        record.ready = True
        self._note_readiness(record)
        if (
            self._reloading is not None
            and record.stop_reason is None
            and record.reload_requested_at is None
        ):
            # A replacement started during the reload runs the new state. A
            # worker that was asked to reload before it was ready still has
            # its reload() to run.
            self._reloading.discard(slot)
        if self._rolling_current.get(slot.service_id) == slot:
            self._advance_rolling(slot.service_id, out)
        self._revision += 1

    def _on_reloaded(self, record: _SlotRecord, received_at: float | None) -> None:
        requested_at = record.reload_requested_at
        if received_at is not None and requested_at is not None and received_at < requested_at:
            # The end of an earlier reload, which the worker finished after
            # the latest request: it reloads again.
            return
        if self._reloading is not None:
            self._reloading.discard(record.slot)
        self._revision += 1

    def _on_replacement_reported(
        self,
        record: _SlotRecord,
        spec: ServiceSpec | None,
        report: WorkerReport,
        now: float,
        out: list[Command],
    ) -> None:
        if report is WorkerReport.TERMINATING:
            self._on_terminating(record, spec, now)
            return
        if report is WorkerReport.HEARTBEAT:
            if record.ready and record.silent_by is not None:
                self._arm_heartbeat(record, spec, now)
            return
        if (
            report is not WorkerReport.READY
            or record.ready
            or record.state is not SlotState.RUNNING
        ):
            return
        record.ready = True
        record.ready_by = None
        self._arm_heartbeat(record, spec, now)
        self._revision += 1
        # The replacement serves: the old worker of its slot may go.
        self._stop(self._records[record.slot], StopReason.RESTART, now, out)

    def _on_terminating(self, record: _SlotRecord, spec: ServiceSpec | None, now: float) -> None:
        """Bound the stop of a running worker that terminates on a request of
        its own, or on a SIGTERM from another process than the master.

        It gets the deadline of a graceful stop, as a stop of the master's
        own has (cotyledon 2.x bounded every stop in the worker itself).
        The exit that follows counts as an exit on the worker's own.
        """
        if record.state is not SlotState.RUNNING:
            return  # a stop that the supervisor sent, bounded already
        self._move_slot(record, SlotTrigger.STOP, SlotState.STOPPING)
        self._clear_running_timers(record)
        record.stop_started = now
        timeout = None if spec is None else spec.graceful_shutdown_timeout
        self._schedule_kill(record, None if timeout is None else now + timeout)
        self._revision += 1

    def _arm_heartbeat(self, record: _SlotRecord, spec: ServiceSpec | None, now: float) -> None:
        if spec is None or spec.heartbeat_timeout is None:
            return
        record.silent_by = now + spec.heartbeat_timeout
        self._push_timer(record, record.silent_by)

    def _end_services(self, now: float, out: list[Command]) -> None:
        """Report the services whose slots have all finished; stop the manager
        once no service has a worker left to run."""
        if not self._check_ended or self._phase is not ManagerPhase.RUNNING:
            return
        self._check_ended = False
        states: dict[ServiceId, set[SlotState]] = {}
        for slot, record in self._records.items():
            states.setdefault(slot.service_id, set()).add(record.state)
        for service_id in self._specs:
            if service_id not in self._ended and states.get(service_id) == {SlotState.FINISHED}:
                self._ended[service_id] = ServiceState.FINISHED
                self._revision += 1
                out.append(ReportServiceEnded(service_id, ServiceState.FINISHED))
        if self._specs and all(service_id in self._ended for service_id in self._specs):
            given_up = ServiceState.GIVEN_UP in self._ended.values()
            status = GIVE_UP_EXIT_STATUS if given_up else 0
            self._stop_manager(StopMode.GRACEFUL, now, out, status=status)

    def _announce(self, out: list[Command]) -> None:
        if self._phase is not ManagerPhase.RUNNING:
            return
        if not self._announced_ready and not self._unready:
            self._announced_ready = True
            self._revision += 1
            out.append(AnnounceReady())
        # While the hooks of a newer request run, the workers have not been
        # signalled for it yet, so the reload is not over.
        if (
            self._reloading is not None
            and not self._reloading
            and not self._replacements
            and not self._reload_hooks_running
        ):
            self._reloading = None
            self._revision += 1
            self._last_reload = ReloadOutcome.FAILED if self._reload_failed else ReloadOutcome.DONE
            out.append(AnnounceReloaded(failed=self._reload_failed))
            self._reload_failed = False

    # Slot moves

    def _stop(
        self, record: _SlotRecord, reason: StopReason, now: float, out: list[Command]
    ) -> None:
        """Ask the slot's worker to stop, or drop a slot that has none."""
        state = record.state
        if state is SlotState.BACKING_OFF:
            target = SlotState.FINISHED if reason is StopReason.GIVE_UP else SlotState.GONE
            self._move_slot(record, SlotTrigger.UNWANTED, target)
            if target is SlotState.GONE:
                self._drop(record)
            else:
                record.respawn_at = None
        elif state is SlotState.FINISHED:
            if reason is not StopReason.GIVE_UP:
                self._move_slot(record, SlotTrigger.UNWANTED, SlotState.GONE)
                self._drop(record)
        elif state is SlotState.SPAWNING or state is SlotState.KILLING:
            pass  # stopped once spawned; or already being killed
        elif state is SlotState.RUNNING:
            assert record.pid is not None
            self._move_slot(record, SlotTrigger.STOP, SlotState.STOPPING)
            self._clear_running_timers(record)
            record.stop_reason = reason
            record.stop_started = now
            out.append(SignalWorker(record.slot, record.pid, _signal_for(reason), reason))
            self._schedule_kill(record, stop_deadline(self._spec_of(record), reason, now))
        elif state is SlotState.STOPPING:
            # Only an interrupt overrides a stop in progress: it asks the
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
            for record in (self._records.get(slot), self._replacements.get(slot)):
                if record is not None:
                    self._run_timer(record, when, now, out)

    def _run_timer(self, record: _SlotRecord, when: float, now: float, out: list[Command]) -> None:
        """Act on one timer of a record, unless it is stale."""
        if record.state is SlotState.BACKING_OFF and record.respawn_at == when:
            self._move_slot(record, SlotTrigger.RESPAWN_DUE, SlotState.SPAWNING)
            record.respawn_at = None
            out.append(SpawnWorker(record.slot))
        elif record.state is SlotState.STOPPING and record.deadline == when:
            assert record.pid is not None
            assert record.stop_started is not None
            self._move_slot(record, SlotTrigger.DEADLINE, SlotState.KILLING)
            record.deadline = None
            out.append(KillWorker(record.slot, record.pid, now - record.stop_started))
        else:
            reason = record.running_timer(when)
            if reason is not None:
                self._stop(record, reason, now, out)

    def _finish_if_done(self, out: list[Command]) -> None:
        if self._records or self._replacements:
            return
        if self._phase is ManagerPhase.STOPPING:
            self._move_phase(ManagerPhase.DONE)
            out.append(ExitManager(0 if self._exit_status is None else self._exit_status))
        elif self._phase is ManagerPhase.INTERRUPTING:
            self._move_phase(ManagerPhase.DONE)
            out.append(ExitManager(1 if self._exit_status is None else self._exit_status))

    def _next_deadline(self) -> float | None:
        while self._timers:
            when, _, slot = self._timers[0]
            for record in (self._records.get(slot), self._replacements.get(slot)):
                if record is not None and (
                    (record.state is SlotState.BACKING_OFF and record.respawn_at == when)
                    or (record.state is SlotState.STOPPING and record.deadline == when)
                    or record.running_timer(when) is not None
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
        if spec.service_id in self._ended:
            return  # an ended service stays so, whatever its worker count
        present = [slot.worker_id for slot in self._records if slot.service_id == spec.service_id]
        for slot in missing_slots(spec, present):
            record = _SlotRecord(slot, SlotState.BACKING_OFF)
            self._records[slot] = record
            self._note_readiness(record)
            self._schedule_respawn(record, now)

    def _schedule_respawn(self, record: _SlotRecord, when: float) -> None:
        record.respawn_at = when
        heapq.heappush(self._timers, (when, next(self._sequence), record.slot))

    def _schedule_kill(self, record: _SlotRecord, when: float | None) -> None:
        record.deadline = when
        if when is not None:
            self._push_timer(record, when)

    def _push_timer(self, record: _SlotRecord, when: float) -> None:
        heapq.heappush(self._timers, (when, next(self._sequence), record.slot))

    @staticmethod
    def _clear_running_timers(record: _SlotRecord) -> None:
        record.ready_by = None
        record.silent_by = None
        record.recycle_at = None

    def _all_records(self) -> list[_SlotRecord]:
        """Every slot record, then every replacement record."""
        return [*self._records.values(), *self._replacements.values()]

    def _wants(self, slot: Slot) -> bool:
        return (
            self._phase is ManagerPhase.RUNNING
            and slot.service_id not in self._ended
            and is_wanted(self._specs.get(slot.service_id), slot)
        )

    def _unwanted_target(self, slot: Slot) -> SlotState:
        """FINISHED for a slot of a service that ended, kept for the status;
        GONE when the manager stops or the service has fewer workers now."""
        if (
            self._phase is ManagerPhase.RUNNING
            and slot.service_id in self._ended
            and is_wanted(self._specs.get(slot.service_id), slot)
        ):
            return SlotState.FINISHED
        return SlotState.GONE

    def _spec_of(self, record: _SlotRecord) -> ServiceSpec | None:
        return self._specs.get(record.slot.service_id)

    def _drop(self, record: _SlotRecord) -> None:
        del self._records[record.slot]
        self._unready.discard(record.slot)
        self._limiter.forget(record.slot)
        if self._reloading is not None:
            self._reloading.discard(record.slot)

    def _move_slot(self, record: _SlotRecord, trigger: SlotTrigger, target: SlotState) -> None:
        check_slot_move(record.state, trigger, target)
        record.state = target
        self._note_readiness(record)
        self._revision += 1
        if target is SlotState.FINISHED or target is SlotState.GONE:
            self._check_ended = True

    def _note_readiness(self, record: _SlotRecord) -> None:
        """Keep ``_unready`` in step with a slot record that changed; a
        replacement's record, which shares its slot, leaves it alone."""
        if self._records.get(record.slot) is not record:
            return
        if record.ready or record.state is SlotState.FINISHED:
            self._unready.discard(record.slot)
        else:
            self._unready.add(record.slot)

    def _move_phase(self, target: ManagerPhase) -> None:
        check_phase_move(self._phase, target)
        self._phase = target
        self._revision += 1


_by_worker_id = operator.attrgetter("worker_id")


def _signal_for(reason: StopReason) -> WorkerSignal:
    if reason is StopReason.INTERRUPT:
        return WorkerSignal.INTERRUPT
    return WorkerSignal.TERMINATE


def _ends_for_good(spec: ServiceSpec, exit_code: int, *, failed: bool) -> bool:
    """Tell whether a worker that ended by itself, or ``failed`` a deadline,
    is not to be restarted."""
    if not failed and exit_code in spec.restart_prevent_exit_statuses:
        return True
    policy = spec.restart
    if policy is RestartPolicy.ALWAYS:
        return False
    if policy is RestartPolicy.ON_FAILURE:
        return exit_code == 0 and not failed
    if policy is RestartPolicy.NEVER:
        return True
    assert_never(policy)


def _exit_status_of(exit_code: int) -> int:
    """Map a worker's exit code to a process exit status: a worker killed by
    signal N gives 128 + N, as in a shell."""
    return 128 - exit_code if exit_code < 0 else exit_code & 0xFF
