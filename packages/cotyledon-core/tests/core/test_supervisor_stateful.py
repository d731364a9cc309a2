"""Random sequences of events against one supervisor, checked by a model.

The machine plays the runtime: it reports the result of each spawn request
(a fresh pid or a failure), makes live workers report and exit, requests
stops, reloads, new worker counts and new shutdown timeouts, and moves a
fake clock. It keeps its own model of the live processes, of when each slot
may respawn and of when each stopping worker is killed. The model is built
only from the commands, the events and the service specs, and every command
and snapshot is checked against it.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis.stateful import RuleBasedStateMachine
from hypothesis.stateful import initialize
from hypothesis.stateful import invariant
from hypothesis.stateful import precondition
from hypothesis.stateful import rule
from hypothesis.stateful import run_state_machine_as_test

from cotyledon.core import FAST_STOP_GRACE
from cotyledon.core import GIVE_UP_EXIT_STATUS
from cotyledon.core import MAX_AGE_JITTER
from cotyledon.core import ROLLING_READY_TIMEOUT
from cotyledon.core import AnnounceReady
from cotyledon.core import AnnounceReloaded
from cotyledon.core import AnnounceReloading
from cotyledon.core import AnnounceStopping
from cotyledon.core import Command
from cotyledon.core import Event
from cotyledon.core import ExitManager
from cotyledon.core import GiveUpAction
from cotyledon.core import KillWorker
from cotyledon.core import ManagerPhase
from cotyledon.core import ReloadHooksDone
from cotyledon.core import ReloadPolicy
from cotyledon.core import ReloadRequested
from cotyledon.core import ReportServiceEnded
from cotyledon.core import ReportSpawnFailure
from cotyledon.core import ReportWorkerExit
from cotyledon.core import RestartPolicy
from cotyledon.core import RunReloadHooks
from cotyledon.core import RunTerminateHooks
from cotyledon.core import ServiceAdded
from cotyledon.core import ServiceId
from cotyledon.core import ServiceSpec
from cotyledon.core import ServiceState
from cotyledon.core import ShutdownTimeoutChanged
from cotyledon.core import SignalWorker
from cotyledon.core import Slot
from cotyledon.core import SlotState
from cotyledon.core import SpawnFailed
from cotyledon.core import SpawnWorker
from cotyledon.core import Start
from cotyledon.core import Step
from cotyledon.core import StopMode
from cotyledon.core import StopReason
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
from cotyledon_testkit import FakeClock

# 0.5 s is shorter than FAST_STOP_GRACE (1 s), so a fast stop may keep an
# earlier graceful deadline. None lets a stopping worker run forever.
TIMEOUTS: list[float | None] = [None, 0.5, 3.0, 30.0]

# The supervision policies of a service; the defaults are drawn most often,
# so that many runs keep restarting workers for long.
POLICIES = st.fixed_dictionaries(
    {
        "restart": st.sampled_from([RestartPolicy.ALWAYS, *RestartPolicy]),
        "restart_prevent_exit_statuses": st.sampled_from([frozenset(), frozenset({2})]),
        "max_restarts": st.sampled_from([None, None, (0, 5.0), (3, 10.0)]),
        "on_give_up": st.sampled_from(list(GiveUpAction)),
        "stop_manager_on_exit": st.sampled_from([False, False, False, True]),
        "startup_timeout": st.sampled_from([None, 1.0, 4.0]),
        "heartbeat_timeout": st.sampled_from([None, 2.0]),
        "max_age": st.sampled_from([None, None, 20.0]),
    }
)

SERVICES = st.tuples(
    st.integers(min_value=1, max_value=3),
    st.sampled_from(TIMEOUTS),
    st.sampled_from(list(ReloadPolicy)),
    POLICIES,
)

# Stops by the supervisor itself, for a missed deadline or an age, while the
# manager runs: the worker gets its service's graceful timeout.
TIMER_REASONS = {
    "ready_by": StopReason.STARTUP_TIMEOUT,
    "silent_by": StopReason.HUNG,
    "recycle_at": StopReason.MAX_AGE,
}

CLOCK_STEPS = st.one_of(
    st.sampled_from([0.0, 0.05, 0.5, 1.0, 5.0]),
    st.floats(min_value=0.0, max_value=40.0, allow_nan=False, allow_infinity=False),
)

# Sized so that the test runs in seconds. derandomize makes every run try the
# same examples, and database=None turns off the example database.
MACHINE_SETTINGS = settings(
    max_examples=150,
    stateful_step_count=80,
    derandomize=True,
    database=None,
    deadline=None,
)

UNKNOWN_PID = 999_999

Announcement = AnnounceReady | AnnounceReloading | AnnounceReloaded | AnnounceStopping

# A worker stopped for these reasons is replaced at once if its slot is
# still wanted. A worker stopped for another reason is never replaced.
REPLACED_REASONS = (StopReason.RESTART, StopReason.RETIRE, StopReason.MAX_AGE)
# A worker stopped for these reasons failed: it is replaced after its
# slot's backoff, unless its restart policy or intensity says otherwise.
FAILED_REASONS = (StopReason.STARTUP_TIMEOUT, StopReason.HUNG)


class SupervisorMachine(RuleBasedStateMachine):
    """One supervisor, moved by random events, and a model of its processes."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.supervisor = Supervisor(random=random.Random(0).random)
        self.timeouts: dict[ServiceId, float | None] = {}
        self.reload_policies: dict[ServiceId, ReloadPolicy] = {}
        self.specs: dict[ServiceId, ServiceSpec] = {}
        # Deadlines of running workers, by pid: startup, heartbeat, age.
        self.running_timers: dict[int, dict[str, float]] = {}
        self.spawned_at: dict[int, float] = {}
        self.expected_status: int | None = None
        # Rolling reloads: the replacement spawns requested, and the live
        # replacement process of each slot.
        self.pending_replacements: set[Slot] = set()
        self.replacement_pids: dict[Slot, int] = {}
        # The model, built from the commands.
        self.live: dict[int, Slot] = {}
        self.pending: list[Slot] = []
        self.killed: set[int] = set()
        self.stop_reasons: dict[int, StopReason] = {}
        self.respawn_at: dict[Slot, float] = {}
        self.kill_at: dict[int, float | None] = {}
        self.stop_started: dict[int, float] = {}
        self.ready_pids: set[int] = set()
        self.announced: list[Announcement] = []
        self.exit_statuses: list[int] = []
        self.terminate_hooks_run = False
        self.fast_stop_requested = False
        # The state of the simulated runtime.
        self.next_pid = 1000
        self.deadline: float | None = None
        self.events_handled = 0
        # Drawn per run: a stop early in most runs would leave little to test.
        self.events_before_stop = 0

    # Events

    @initialize(
        first=SERVICES,
        second=SERVICES,
        events_before_stop=st.integers(min_value=0, max_value=40),
    )
    def add_services(
        self,
        first: tuple[int, float | None, ReloadPolicy, dict[str, object]],
        second: tuple[int, float | None, ReloadPolicy, dict[str, object]],
        events_before_stop: int,
    ) -> None:
        self.events_before_stop = events_before_stop
        for number, (workers, timeout, policy, policies) in enumerate((first, second), start=1):
            service_id = ServiceId(uuid.UUID(int=number))
            spec = ServiceSpec(
                service_id,
                f"service-{number}",
                workers,
                timeout,
                policy,
                **policies,  # type: ignore[arg-type]
            )
            self.timeouts[service_id] = timeout
            self.reload_policies[service_id] = policy
            self.specs[service_id] = spec

            step = self._handle(ServiceAdded(spec))

            assert step.commands == ()
        # Stop before Start is covered by test_supervisor.py. Starting here
        # lets most steps of a run act on a running manager.
        self._handle(Start())

    @rule()
    def start_again(self) -> None:
        step = self._handle(Start())

        assert step.commands == ()

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data())
    def spawn_succeeds(self, data: st.DataObject) -> None:
        slot = data.draw(st.sampled_from(self.pending))
        self.pending.remove(slot)
        pid = self.next_pid
        self.next_pid += 1
        self.live[pid] = slot
        now = self.clock.now()
        self.spawned_at[pid] = now
        if slot in self.pending_replacements:
            self.pending_replacements.remove(slot)
            self.replacement_pids[slot] = pid

        self._handle(WorkerSpawned(slot, pid), spawned=pid)

    @precondition(lambda self: bool(self.pending))
    @rule()
    def every_spawn_succeeds(self) -> None:
        # The common case, as a rule of its own, so that runs reach steady
        # states (every worker live) often.
        while self.pending:
            slot = self.pending.pop(0)
            pid = self.next_pid
            self.next_pid += 1
            self.live[pid] = slot
            self.spawned_at[pid] = self.clock.now()
            if slot in self.pending_replacements:
                self.pending_replacements.remove(slot)
                self.replacement_pids[slot] = pid
            self._handle(WorkerSpawned(slot, pid), spawned=pid)

    @precondition(lambda self: bool(self.live))
    @rule()
    def every_worker_ready(self) -> None:
        for pid in sorted(self.live):
            if pid in self.live and pid not in self.ready_pids:
                self._report(pid, WorkerReport.READY)

    @precondition(lambda self: bool(self.pending))
    @rule(data=st.data(), reason=st.sampled_from(["fork failed", "out of memory"]))
    def spawn_fails(self, data: st.DataObject, reason: str) -> None:
        slot = data.draw(st.sampled_from(self.pending))
        self.pending.remove(slot)
        self.pending_replacements.discard(slot)

        self._handle(SpawnFailed(slot, reason), failed=slot)

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), exit_code=st.integers(min_value=-15, max_value=3))
    def worker_exits(self, data: st.DataObject, exit_code: int) -> None:
        pid = data.draw(st.sampled_from(sorted(self.live)))
        self._exit(pid, exit_code)

    @precondition(lambda self: bool(self.killed))
    @rule(data=st.data())
    def killed_worker_exits(self, data: st.DataObject) -> None:
        pid = data.draw(st.sampled_from(sorted(self.killed)))
        self._exit(pid, -9)

    @precondition(lambda self: bool(self.live))
    @rule(data=st.data(), report=st.sampled_from(list(WorkerReport)))
    def worker_reports(self, data: st.DataObject, report: WorkerReport) -> None:
        pid = data.draw(st.sampled_from(sorted(self.live)))
        self._report(pid, report)

    def _report(self, pid: int, report: WorkerReport) -> None:
        spec = self.specs[self.live[pid].service_id]
        timers = self.running_timers.get(pid)
        now = self.clock.now()
        if report is WorkerReport.READY:
            if pid not in self.ready_pids and timers is not None:
                timers.pop("ready_by", None)
                if spec.heartbeat_timeout is not None:
                    timers["silent_by"] = now + spec.heartbeat_timeout
            self.ready_pids.add(pid)
        elif report is WorkerReport.HEARTBEAT and timers is not None and "silent_by" in timers:
            assert spec.heartbeat_timeout is not None
            timers["silent_by"] = now + spec.heartbeat_timeout
        elif (
            report is WorkerReport.TERMINATING
            and pid not in self.kill_at
            and pid not in self.killed
        ):
            # A stop from elsewhere: the supervisor bounds it as its own.
            self.running_timers.pop(pid, None)
            self.stop_started[pid] = now
            timeout = self.timeouts[spec.service_id]
            self.kill_at[pid] = None if timeout is None else now + timeout

        step = self._handle(WorkerReported(pid, report))

        # A report only announces, or moves a rolling reload on: a ready
        # replacement retires the old worker, the next slot gets its own.
        for command in step.commands:
            if isinstance(command, SignalWorker):
                assert command.reason is StopReason.RESTART
            else:
                assert isinstance(command, (Announcement, SpawnWorker))

    @rule()
    def unknown_pid_exits(self) -> None:
        step = self._handle(WorkerExited(UNKNOWN_PID, 0))

        assert step.commands == ()

    # Two rules rather than one with a mode, so that some runs (hypothesis
    # turns rules off at random) stop gracefully and never fast.
    @precondition(lambda self: self.events_handled >= self.events_before_stop)
    @rule()
    def graceful_stop(self) -> None:
        self._handle(StopRequested(StopMode.GRACEFUL))

    @precondition(lambda self: self.events_handled >= self.events_before_stop)
    @rule()
    def fast_stop(self) -> None:
        if self.supervisor.phase is not ManagerPhase.DONE:
            self.fast_stop_requested = True

        self._handle(StopRequested(StopMode.FAST))

    @rule()
    def reload(self) -> None:
        self._handle(ReloadRequested())

    @rule()
    def full_reload(self) -> None:
        self._handle(ReloadRequested())
        self._handle(ReloadHooksDone(cancelled=False))

    @rule(cancelled=st.booleans())
    def reload_hooks_done(self, cancelled: bool) -> None:
        # The runtime reports the end of the on_reload hooks, which may have
        # cancelled the reload; without a reload in progress it is ignored.
        self._handle(ReloadHooksDone(cancelled))

    @rule(service=st.integers(min_value=1, max_value=2), workers=st.integers(1, 4))
    def change_workers(self, service: int, workers: int) -> None:
        self._handle(WorkersChanged(ServiceId(uuid.UUID(int=service)), workers))

    @rule(service=st.integers(min_value=1, max_value=2), timeout=st.sampled_from(TIMEOUTS))
    def change_timeout(self, service: int, timeout: float | None) -> None:
        service_id = ServiceId(uuid.UUID(int=service))
        # The new timeout applies to the stops that start from now on.
        self.timeouts[service_id] = timeout

        step = self._handle(ShutdownTimeoutChanged(service_id, timeout))

        assert step.commands == ()

    @rule(seconds=CLOCK_STEPS)
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

        self._handle(TimerFired(), timer=True)

    @precondition(lambda self: self.deadline is not None)
    @rule()
    def deadline_comes(self) -> None:
        self.clock.jump_to(self.deadline)

        step = self._handle(TimerFired(), timer=True)

        # The deadline is the earliest respawn or kill that is still due,
        # so reaching it always does something.
        assert step.commands != ()

    @precondition(lambda self: self.deadline is not None)
    @rule(early=st.sampled_from([1e-6, 0.01, 0.2]))
    def deadline_nearly_comes(self, early: float) -> None:
        assert self.deadline is not None
        self.clock.jump_to(self.deadline - early)

        self._handle(TimerFired(), timer=True)

    # Invariants

    @invariant()
    def one_live_process_per_slot(self) -> None:
        # Besides its own, a slot may have one replacement process during a
        # rolling reload; a service has one slot with a replacement at most.
        mains = [slot for pid, slot in self.live.items() if self.replacement_pids.get(slot) != pid]
        assert len(set(mains)) == len(mains)
        replaced = [*self.replacement_pids, *self.pending_replacements]
        services = [slot.service_id for slot in replaced]
        assert len(set(services)) == len(services)
        for slot in replaced:
            assert self.reload_policies[slot.service_id] is ReloadPolicy.ROLLING

    @invariant()
    def supervisor_knows_live_pids(self) -> None:
        views = [*self.supervisor.slots().values(), *self.supervisor.replacements().values()]
        pids = {view.pid for view in views if view.pid is not None}

        assert pids == set(self.live)
        for pid, slot in self.live.items():
            assert self.supervisor.slot_of_pid(pid) == slot

    @invariant()
    def pending_slots_are_spawning(self) -> None:
        views = [*self.supervisor.slots().values(), *self.supervisor.replacements().values()]
        spawning = [view.slot for view in views if view.state is SlotState.SPAWNING]

        assert sorted(spawning) == sorted(self.pending)

    @invariant()
    def slot_views_match_model(self) -> None:
        replacements = self.supervisor.replacements()
        assert set(replacements) == set(self.replacement_pids) | self.pending_replacements
        for slot, view in replacements.items():
            assert view.pid == self.replacement_pids.get(slot)
        views = [*self.supervisor.slots().items(), *replacements.items()]
        for slot, view in views:
            if view.state is SlotState.BACKING_OFF:
                assert view.respawn_at == self.respawn_at.get(slot)
            else:
                assert view.respawn_at is None
            if view.state is SlotState.STOPPING:
                assert view.pid in self.kill_at
                assert view.deadline == self.kill_at[view.pid]
            else:
                assert view.deadline is None
            if view.state is SlotState.KILLING:
                assert view.pid in self.killed
            if view.state is SlotState.FINISHED:
                assert view.pid is None
            timers = self.running_timers.get(view.pid) if view.pid is not None else None
            if view.state is SlotState.RUNNING and timers is not None:
                assert view.ready_by == timers.get("ready_by")
                assert view.silent_by == timers.get("silent_by")
                assert view.recycle_at == timers.get("recycle_at")
            else:
                assert (view.ready_by, view.silent_by, view.recycle_at) == (None, None, None)
            if view.pid is not None:
                assert view.stop_reason == self.stop_reasons.get(view.pid)

    @invariant()
    def ready_is_announced_once_every_slot_is_ready(self) -> None:
        if self.supervisor.phase is not ManagerPhase.RUNNING:
            return
        views = self.supervisor.slots().values()
        if all(
            view.pid in self.ready_pids for view in views if view.state is not SlotState.FINISHED
        ):
            assert AnnounceReady() in self.announced

    @invariant()
    def stopping_manager_stops_every_slot(self) -> None:
        phase = self.supervisor.phase
        views = [*self.supervisor.slots().values(), *self.supervisor.replacements().values()]
        states = {view.state for view in views}

        if phase in (ManagerPhase.STOPPING, ManagerPhase.INTERRUPTING):
            assert states <= {SlotState.SPAWNING, SlotState.STOPPING, SlotState.KILLING}

    @invariant()
    def done_means_one_exit(self) -> None:
        done = self.supervisor.phase is ManagerPhase.DONE

        assert done == (len(self.exit_statuses) == 1)
        assert len(self.exit_statuses) <= 1
        if done:
            assert self.supervisor.slots() == {}

    # Helpers

    def _exit(self, pid: int, exit_code: int) -> None:
        slot = self.live.pop(pid)
        self.killed.discard(pid)
        self.kill_at.pop(pid, None)
        self.stop_started.pop(pid, None)
        self.ready_pids.discard(pid)
        self.running_timers.pop(pid, None)

        step = self._handle(WorkerExited(pid, exit_code), exited=(pid, slot))

        assert sum(isinstance(command, ReportWorkerExit) for command in step.commands) == 1

    def _handle(
        self,
        event: Event,
        *,
        exited: tuple[int, Slot] | None = None,
        failed: Slot | None = None,
        timer: bool = False,
        spawned: int | None = None,
    ) -> Step:
        """Send one event at the clock's time and check what comes back."""
        now = self.clock.now()
        before = [*self.supervisor.slots().items(), *self.supervisor.replacements().items()]
        respawn_at = dict(self.respawn_at)
        kill_at = dict(self.kill_at)
        running_timers = {pid: dict(timers) for pid, timers in self.running_timers.items()}
        was_done = self.supervisor.phase is ManagerPhase.DONE
        was_running = self.supervisor.phase is ManagerPhase.RUNNING

        step = self.supervisor.handle(event, now)
        self.events_handled += 1
        if spawned is not None:
            self._arm_running_timers(spawned, step, now)
        if was_running and self.supervisor.phase in (ManagerPhase.STOPPING, ManagerPhase.DONE):
            self._expect_policy_status(event, step)

        if was_done:
            assert step.commands == ()
        for command in step.commands:
            self._check_command(command, step, now, exited=exited, failed=failed)
        _check_order(step)
        if timer:
            due_kills = {
                slot
                for slot, view in before
                if view.state is SlotState.STOPPING
                and view.pid is not None
                and _is_due(kill_at[view.pid], now)
            }
            due_spawns = {
                slot
                for slot, view in before
                if view.state is SlotState.BACKING_OFF and _is_due(respawn_at[slot], now)
            }
            assert _slots_of(step, KillWorker) == due_kills
            assert _slots_of(step, SpawnWorker) == due_spawns
            if was_running:
                due_stops = {
                    (pid, TIMER_REASONS[min(timers, key=lambda name: (timers[name], name))])
                    for pid, timers in running_timers.items()
                    if pid in self.live and any(when <= now for when in timers.values())
                }
                timer_stops = {
                    (command.pid, command.reason)
                    for command in step.commands
                    if isinstance(command, SignalWorker)
                    and command.reason in TIMER_REASONS.values()
                }
                assert {pid for pid, _ in timer_stops} == {pid for pid, _ in due_stops}
        self._forget_dropped_slots()
        times = [
            *self.respawn_at.values(),
            *self.kill_at.values(),
            *(when for timers in self.running_timers.values() for when in timers.values()),
        ]
        assert step.deadline == min((t for t in times if t is not None), default=None)
        if step.deadline is not None:
            assert step.deadline >= now
        self.deadline = step.deadline
        return step

    def _check_command(
        self,
        command: Command,
        step: Step,
        now: float,
        *,
        exited: tuple[int, Slot] | None,
        failed: Slot | None,
    ) -> None:
        """Check one command against the model, then apply it to the model."""
        if isinstance(command, SpawnWorker):
            self._check_spawn(command, now)
        elif isinstance(command, SignalWorker):
            assert command.slot.service_id in self.timeouts
            assert self.live.get(command.pid) == command.slot
            assert command.pid not in self.killed
            self._apply_signal(command, now)
        elif isinstance(command, KillWorker):
            assert command.slot.service_id in self.timeouts
            assert self.live.get(command.pid) == command.slot
            kill_at = self.kill_at.pop(command.pid, None)
            assert kill_at is not None
            assert now >= kill_at
            assert command.waited == now - self.stop_started[command.pid]
            self.killed.add(command.pid)
        elif isinstance(command, ReportWorkerExit):
            assert (command.pid, command.slot) == exited
            self._apply_exit_report(command, now)
        elif isinstance(command, ReportSpawnFailure):
            assert command.slot == failed
            if command.retry_delay is not None:
                assert command.retry_delay > 0.0
                self.respawn_at[command.slot] = now + command.retry_delay
        elif isinstance(command, RunTerminateHooks):
            assert not self.terminate_hooks_run
            self.terminate_hooks_run = True
        elif isinstance(command, RunReloadHooks):
            assert self.supervisor.phase is ManagerPhase.RUNNING
        elif isinstance(command, ReportServiceEnded):
            self._check_service_ended(command)
        elif isinstance(command, Announcement):
            self._check_announcement(command)
        elif isinstance(command, ExitManager):
            self._check_exit(command, step)
        else:
            assert_never(command)

    def _check_spawn(self, command: SpawnWorker, now: float) -> None:
        """Check a spawn request: of a slot without a process, or a replacement."""
        assert command.slot.service_id in self.timeouts
        assert self._service_state(command.slot.service_id) is ServiceState.RUNNING
        assert command.slot not in self.pending
        self.pending.append(command.slot)
        if any(
            slot == command.slot and self.replacement_pids.get(slot) != pid
            for pid, slot in self.live.items()
        ):
            # A rolling replacement, for a slot with a live process.
            self.pending_replacements.add(command.slot)
            return
        # A slot with no respawn time in the model is new: it spawns now.
        assert self.respawn_at.pop(command.slot, now) <= now

    def _check_service_ended(self, command: ReportServiceEnded) -> None:
        """Check that a service reported ended is so, and given up only with a limit."""
        assert self._service_state(command.service_id) is command.state
        given_up = command.state is ServiceState.GIVEN_UP
        assert not given_up or self.specs[command.service_id].max_restarts is not None

    def _check_exit(self, command: ExitManager, step: Step) -> None:
        """Check the manager's exit: once, last, with nothing left, with its status."""
        assert AnnounceStopping() in self.announced
        assert self.exit_statuses == []
        assert command is step.commands[-1]
        if self.expected_status is not None:
            assert command.status == self.expected_status
        else:
            assert command.status == (1 if self.fast_stop_requested else 0)
        assert self.live == {}
        assert self.pending == []
        self.exit_statuses.append(command.status)

    def _check_announcement(self, command: Announcement) -> None:
        """Check that the manager announces a state it is in, once."""
        phase = self.supervisor.phase
        if isinstance(command, AnnounceStopping):
            assert command not in self.announced
            assert phase is not ManagerPhase.RUNNING
        elif isinstance(command, AnnounceReady):
            assert command not in self.announced
            assert phase is ManagerPhase.RUNNING
            views = self.supervisor.slots().values()
            assert all(
                view.pid in self.ready_pids
                for view in views
                if view.state is not SlotState.FINISHED
            )
        elif isinstance(command, AnnounceReloading):
            assert phase is ManagerPhase.RUNNING
        elif isinstance(command, AnnounceReloaded):
            assert phase is ManagerPhase.RUNNING
            assert self.announced.count(AnnounceReloaded()) < self.announced.count(
                AnnounceReloading()
            )
        else:
            assert_never(command)
        self.announced.append(command)

    def _apply_signal(self, command: SignalWorker, now: float) -> None:
        """Check a signal's reason and record when its worker is killed."""
        pid = command.pid
        policy = self.reload_policies[command.slot.service_id]
        if command.signal is WorkerSignal.RELOAD:
            assert command.reason is None
            assert policy is ReloadPolicy.IN_PLACE
            assert pid not in self.kill_at
        elif command.signal is WorkerSignal.TERMINATE:
            assert command.reason in (
                StopReason.SHUTDOWN,
                StopReason.GIVE_UP,
                *REPLACED_REASONS,
                *FAILED_REASONS,
            )
            assert pid not in self.kill_at
            self.running_timers.pop(pid, None)
            if command.reason is StopReason.GIVE_UP:
                assert self._service_state(command.slot.service_id) is ServiceState.GIVEN_UP
            if command.reason is StopReason.SHUTDOWN:
                assert self.terminate_hooks_run
            if command.reason is StopReason.RESTART:
                assert policy in (ReloadPolicy.RESTART, ReloadPolicy.ROLLING)
            self.stop_started[pid] = now
            timeout = self.timeouts[command.slot.service_id]
            self.kill_at[pid] = None if timeout is None else now + timeout
            self.stop_reasons[pid] = command.reason
        elif command.signal is WorkerSignal.INTERRUPT:
            assert command.reason is StopReason.INTERRUPT
            assert self.stop_reasons.get(pid) is not StopReason.INTERRUPT
            # An interrupt brings a deadline closer, never later.
            self.running_timers.pop(pid, None)
            earlier = self.kill_at.get(pid)
            grace_end = now + FAST_STOP_GRACE
            self.kill_at[pid] = grace_end if earlier is None else min(earlier, grace_end)
            self.stop_started.setdefault(pid, now)
            self.stop_reasons[pid] = command.reason
        else:
            assert_never(command.signal)

    def _apply_exit_report(self, command: ReportWorkerExit, now: float) -> None:
        """Check the stop reason and delay of an exit, and record the respawn time."""
        assert command.stop_reason == self.stop_reasons.pop(command.pid, None)
        if command.stop_reason in REPLACED_REASONS:
            assert command.respawn_delay in (None, 0.0)
        elif command.stop_reason in FAILED_REASONS:
            pass  # a failure: a backoff, or no restart (policy, intensity)
        elif command.stop_reason is not None:
            assert command.respawn_delay is None
        if self.replacement_pids.get(command.slot) == command.pid:
            del self.replacement_pids[command.slot]
            assert command.respawn_delay is None
            return
        replacement = self.replacement_pids.get(command.slot)
        # A replacement takes over unless it was stopped itself.
        if (
            command.respawn_delay == 0.0
            and replacement is not None
            and (replacement not in self.stop_reasons)
        ):
            self._hand_over(command.slot, now)
        elif command.respawn_delay == 0.0 and command.slot in self.pending_replacements:
            self.pending_replacements.remove(command.slot)
        view = self.supervisor.slots().get(command.slot)
        if command.respawn_delay is None and view is not None:
            # The slot stays only as FINISHED: its worker ended for good.
            assert view.state is SlotState.FINISHED
        if command.respawn_delay is not None:
            assert command.respawn_delay >= 0.0
            self.respawn_at[command.slot] = now + command.respawn_delay

    def _hand_over(self, slot: Slot, now: float) -> None:
        """The replacement of a slot took its place: it is the slot's process now."""
        pid = self.replacement_pids.pop(slot)
        spec = self.specs[slot.service_id]
        timers = self.running_timers.setdefault(pid, {})
        if spec.max_age is not None:
            recycle_at = self.supervisor.slots()[slot].recycle_at
            assert recycle_at is not None
            started = self.spawned_at[pid]
            assert started + spec.max_age * (1 - MAX_AGE_JITTER) <= recycle_at
            assert recycle_at <= started + spec.max_age
            timers["recycle_at"] = recycle_at
        assert now >= self.spawned_at[pid]

    def _arm_running_timers(self, pid: int, step: Step, now: float) -> None:
        """Record the startup and age deadlines of a worker that just started."""
        stopped = any(isinstance(c, SignalWorker) and c.pid == pid for c in step.commands)
        if stopped:
            return
        spec = self.specs[self.live[pid].service_id]
        if self.replacement_pids.get(self.live[pid]) == pid:
            timeout = spec.startup_timeout
            ready_by = now + (ROLLING_READY_TIMEOUT if timeout is None else timeout)
            self.running_timers[pid] = {"ready_by": ready_by}
            return
        timers: dict[str, float] = {}
        if spec.startup_timeout is not None:
            timers["ready_by"] = now + spec.startup_timeout
        if spec.max_age is not None:
            recycle_at = self.supervisor.slots()[self.live[pid]].recycle_at
            assert recycle_at is not None
            assert now + spec.max_age * (1 - MAX_AGE_JITTER) <= recycle_at <= now + spec.max_age
            timers["recycle_at"] = recycle_at
        self.running_timers[pid] = timers

    def _expect_policy_status(self, event: Event, step: Step) -> None:
        """Record the exit status of a stop that a policy, not a request, began."""
        if isinstance(event, StopRequested):
            return
        exits = [c for c in step.commands if isinstance(c, ReportWorkerExit)]
        if (
            exits
            and exits[0].stop_reason is None
            and self.specs[exits[0].slot.service_id].stop_manager_on_exit
            and ReportServiceEnded(exits[0].slot.service_id, ServiceState.GIVEN_UP)
            not in step.commands
        ):
            code = exits[0].exit_code
            self.expected_status = 128 - code if code < 0 else code
        elif any(
            self._service_state(service_id) is ServiceState.GIVEN_UP for service_id in self.specs
        ):
            self.expected_status = GIVE_UP_EXIT_STATUS
        else:
            self.expected_status = 0

    def _service_state(self, service_id: ServiceId) -> ServiceState:
        status = self.supervisor.status(self.clock.now())
        return next(s.state for s in status.services if s.service_id == service_id)

    def _forget_dropped_slots(self) -> None:
        """Drop the respawn times of slots that are no longer backing off."""
        views = self.supervisor.slots()
        self.respawn_at = {
            slot: when
            for slot, when in self.respawn_at.items()
            if slot in views and views[slot].state is SlotState.BACKING_OFF
        }


def _check_order(step: Step) -> None:
    """Check the order of the commands of one step that come in pairs."""
    commands = list(step.commands)
    if AnnounceReloading() in commands or RunReloadHooks() in commands:
        reloading = commands.index(AnnounceReloading())
        assert commands.index(RunReloadHooks()) == reloading + 1
    if RunTerminateHooks() in commands:
        assert commands.index(AnnounceStopping()) < commands.index(RunTerminateHooks())


def _is_due(when: float | None, now: float) -> bool:
    return when is not None and when <= now


def _slots_of(step: Step, kind: type[SpawnWorker] | type[KillWorker]) -> set[Slot]:
    return {command.slot for command in step.commands if isinstance(command, kind)}


@pytest.fixture
def hypothesis_home(tmp_path: Path) -> Iterator[Path]:
    """Point hypothesis's storage folder at a temporary folder for one test.

    database=None is not enough to keep a .hypothesis folder out of the
    working directory, because hypothesis (6.170 here) also caches constants
    that it reads from local source files in ``.hypothesis/constants``.
    """
    set_hypothesis_home_dir(tmp_path)
    try:
        yield tmp_path
    finally:
        # None restores the default: $HYPOTHESIS_STORAGE_DIRECTORY, or
        # .hypothesis in the working directory.
        set_hypothesis_home_dir(None)


@pytest.mark.usefixtures("hypothesis_home")
def test_supervisor_random_events_keep_invariants() -> None:
    run_state_machine_as_test(SupervisorMachine, settings=MACHINE_SETTINGS)
