"""Tests of ``Supervisor.handle``: the commands and deadline of each event.

Every test drives the supervisor with a fake clock and a seeded jitter
source. The services are ``web`` (2 workers, 30 s graceful timeout), added
first, and ``batch`` (1 worker, 5 s), unless a test builds its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from cotyledon.core import FAST_STOP_GRACE
from cotyledon.core import AnnounceReloaded
from cotyledon.core import AnnounceReloading
from cotyledon.core import AnnounceStopping
from cotyledon.core import ExitManager
from cotyledon.core import KillWorker
from cotyledon.core import ManagerPhase
from cotyledon.core import ReloadHooksDone
from cotyledon.core import ReloadOutcome
from cotyledon.core import ReloadPolicy
from cotyledon.core import ReloadRequested
from cotyledon.core import ReportSpawnFailure
from cotyledon.core import ReportWorkerExit
from cotyledon.core import RunReloadHooks
from cotyledon.core import RunTerminateHooks
from cotyledon.core import ServiceAdded
from cotyledon.core import ServiceId
from cotyledon.core import ServiceSpec
from cotyledon.core import ShutdownTimeoutChanged
from cotyledon.core import SignalWorker
from cotyledon.core import Slot
from cotyledon.core import SlotState
from cotyledon.core import SlotView
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
from cotyledon.core import WorkerId
from cotyledon.core import WorkerReport
from cotyledon.core import WorkerReported
from cotyledon.core import WorkersChanged
from cotyledon.core import WorkerSignal
from cotyledon.core import WorkerSpawned
from cotyledon.core import evolve
from cotyledon_testkit import FakeClock

Random = Callable[[], float]

TERMINATE = WorkerSignal.TERMINATE
INTERRUPT = WorkerSignal.INTERRUPT
RELOAD = WorkerSignal.RELOAD

# The default RespawnPolicy waits 0.1 s, give or take 10 % of jitter, before
# the second restart in a row.
SECOND_DELAY_MIN = 0.09
SECOND_DELAY_MAX = 0.11


def _slot(spec: ServiceSpec, worker_id: int) -> Slot:
    return Slot(spec.service_id, WorkerId(worker_id))


def _spawn_requested(supervisor: Supervisor, step: Step, now: float, first_pid: int) -> list[int]:
    """Report a WorkerSpawned for each SpawnWorker of the step and return the pids."""
    pids: list[int] = []
    for command in step.commands:
        if isinstance(command, SpawnWorker):
            pid = first_pid + len(pids)
            supervisor.handle(WorkerSpawned(command.slot, pid), now)
            pids.append(pid)
    return pids


def _start(supervisor: Supervisor, clock: FakeClock) -> dict[Slot, int]:
    """Start the supervisor and every worker, and return the pid of each slot."""
    step = supervisor.handle(Start(), clock.now())
    slots = [command.slot for command in step.commands if isinstance(command, SpawnWorker)]
    pids = _spawn_requested(supervisor, step, clock.now(), first_pid=100)
    return dict(zip(slots, pids, strict=True))


def _exit_report(step: Step) -> ReportWorkerExit:
    reports = [command for command in step.commands if isinstance(command, ReportWorkerExit)]
    assert len(reports) == 1, f"expected one ReportWorkerExit in {step.commands}"
    return reports[0]


def _respawn_delay(step: Step) -> float:
    delay = _exit_report(step).respawn_delay
    assert delay is not None, f"expected a respawn in {step.commands}"
    return delay


def _crash_and_respawn(
    supervisor: Supervisor, clock: FakeClock, slot: Slot, pid: int, new_pid: int
) -> float:
    """Make the slot's worker exit with status 1, wait out the respawn delay
    and start its replacement as ``new_pid``. Return the delay."""
    exited_at = clock.now()
    step = supervisor.handle(WorkerExited(pid, 1), exited_at)
    delay = _respawn_delay(step)
    if SpawnWorker(slot) not in step.commands:
        clock.jump_to(exited_at + delay)
        step = supervisor.handle(TimerFired(), clock.now())
    assert SpawnWorker(slot) in step.commands, f"expected a respawn in {step.commands}"
    supervisor.handle(WorkerSpawned(slot, new_pid), clock.now())
    return delay


def _crash_loop(
    supervisor: Supervisor, clock: FakeClock, slot: Slot, pid: int, crashes: int
) -> int:
    """Crash the slot's worker ``crashes`` times, respawning it each time,
    and return the pid of the last worker."""
    for number in range(crashes):
        new_pid = pid + 1000 * (number + 1)
        _crash_and_respawn(supervisor, clock, slot, pid, new_pid)
        pid = new_pid
    return pid


@pytest.fixture
def supervisor(web_spec: ServiceSpec, batch_spec: ServiceSpec, seeded_random: Random) -> Supervisor:
    return Supervisor([web_spec, batch_spec], random=seeded_random)


# Start


def test_start_spawns_in_service_order(
    supervisor: Supervisor, web_spec: ServiceSpec, batch_spec: ServiceSpec
) -> None:
    step = supervisor.handle(Start(), 0.0)

    assert step.commands == (
        SpawnWorker(_slot(web_spec, 0)),
        SpawnWorker(_slot(web_spec, 1)),
        SpawnWorker(_slot(batch_spec, 0)),
    )
    assert step.deadline is None
    assert supervisor.phase is ManagerPhase.RUNNING


def test_start_twice_does_nothing(supervisor: Supervisor) -> None:
    supervisor.handle(Start(), 0.0)

    step = supervisor.handle(Start(), 1.0)

    assert step.commands == ()


# Respawn


def test_exit_first_respawns_at_once(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    slot = _slot(web_spec, 0)
    fake_clock.advance(1.0)

    step = supervisor.handle(WorkerExited(pids[slot], 1), fake_clock.now())

    assert step.commands == (
        ReportWorkerExit(slot, pids[slot], 1, None, 0.0),
        SpawnWorker(slot),
    )
    assert step.deadline is None


def test_exit_second_respawn_is_delayed(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    slot = _slot(web_spec, 0)
    pid = _crash_loop(supervisor, fake_clock, slot, _start(supervisor, fake_clock)[slot], 1)
    fake_clock.advance(1.0)

    step = supervisor.handle(WorkerExited(pid, 1), fake_clock.now())

    delay = _respawn_delay(step)
    assert step.commands == (ReportWorkerExit(slot, pid, 1, None, delay),)
    assert SECOND_DELAY_MIN <= delay <= SECOND_DELAY_MAX
    assert supervisor.failures(slot) == 2


def test_exit_delay_sets_step_deadline(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    slot = _slot(web_spec, 0)
    pid = _crash_loop(supervisor, fake_clock, slot, _start(supervisor, fake_clock)[slot], 1)
    fake_clock.advance(1.0)

    step = supervisor.handle(WorkerExited(pid, 1), fake_clock.now())

    assert step.deadline == fake_clock.now() + _respawn_delay(step)


def test_timer_at_deadline_spawns_worker(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    slot = _slot(web_spec, 0)
    pid = _crash_loop(supervisor, fake_clock, slot, _start(supervisor, fake_clock)[slot], 1)
    fake_clock.jump_to(supervisor.handle(WorkerExited(pid, 1), fake_clock.now()).deadline)

    step = supervisor.handle(TimerFired(), fake_clock.now())

    assert step.commands == (SpawnWorker(slot),)
    assert step.deadline is None


def test_timer_before_deadline_does_nothing(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    slot = _slot(web_spec, 0)
    pid = _crash_loop(supervisor, fake_clock, slot, _start(supervisor, fake_clock)[slot], 1)
    deadline = supervisor.handle(WorkerExited(pid, 1), fake_clock.now()).deadline
    assert deadline is not None
    fake_clock.jump_to(deadline - 0.01)

    step = supervisor.handle(TimerFired(), fake_clock.now())

    assert step.commands == ()
    assert step.deadline == deadline


def test_crash_loop_spares_other_slots(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    looping = _slot(web_spec, 0)
    other = _slot(web_spec, 1)
    pids = _start(supervisor, fake_clock)
    last_pid = _crash_loop(supervisor, fake_clock, looping, pids[looping], 5)
    backing_off = supervisor.handle(WorkerExited(last_pid, 1), fake_clock.now())
    assert _respawn_delay(backing_off) > 1.0

    step = supervisor.handle(WorkerExited(pids[other], 1), fake_clock.now())

    assert step.commands == (
        ReportWorkerExit(other, pids[other], 1, None, 0.0),
        SpawnWorker(other),
    )
    assert supervisor.failures(other) == 1


def test_stable_worker_resets_failures(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    slot = _slot(web_spec, 0)
    pid = _crash_loop(supervisor, fake_clock, slot, _start(supervisor, fake_clock)[slot], 3)
    fake_clock.advance(10.0)

    step = supervisor.handle(WorkerExited(pid, 1), fake_clock.now())

    assert _respawn_delay(step) == 0.0
    assert supervisor.failures(slot) == 1


# Graceful stop


def test_graceful_stop_runs_hooks_first(
    supervisor: Supervisor,
    fake_clock: FakeClock,
    web_spec: ServiceSpec,
    batch_spec: ServiceSpec,
) -> None:
    pids = _start(supervisor, fake_clock)
    web0, web1, batch0 = _slot(web_spec, 0), _slot(web_spec, 1), _slot(batch_spec, 0)

    step = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    assert step.commands == (
        AnnounceStopping(),
        RunTerminateHooks(),
        SignalWorker(web0, pids[web0], TERMINATE, StopReason.SHUTDOWN),
        SignalWorker(web1, pids[web1], TERMINATE, StopReason.SHUTDOWN),
        SignalWorker(batch0, pids[batch0], TERMINATE, StopReason.SHUTDOWN),
    )
    assert supervisor.phase is ManagerPhase.STOPPING


def test_graceful_stop_deadline_is_timeout(
    supervisor: Supervisor,
    fake_clock: FakeClock,
    web_spec: ServiceSpec,
    batch_spec: ServiceSpec,
) -> None:
    _start(supervisor, fake_clock)

    step = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    deadlines = {slot: view.deadline for slot, view in supervisor.slots().items()}
    assert step.deadline == 15.0
    assert deadlines == {
        _slot(web_spec, 0): 40.0,
        _slot(web_spec, 1): 40.0,
        _slot(batch_spec, 0): 15.0,
    }


def test_stop_from_elsewhere_gets_graceful_deadline(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    batch0 = _slot(batch_spec, 0)

    step = supervisor.handle(
        WorkerReported(pids[batch0], WorkerReport.TERMINATING), fake_clock.advance(1.0)
    )

    assert step.commands == ()
    assert step.deadline == 6.0
    view = supervisor.slots()[batch0]
    assert view.state is SlotState.STOPPING
    assert view.stop_reason is None


def test_stop_from_elsewhere_killed_at_deadline(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    batch0 = _slot(batch_spec, 0)
    supervisor.handle(WorkerReported(pids[batch0], WorkerReport.TERMINATING), fake_clock.now())

    killed = supervisor.handle(TimerFired(), fake_clock.advance(5.0))
    exited = supervisor.handle(WorkerExited(pids[batch0], -9), fake_clock.advance(0.1))

    assert killed.commands == (KillWorker(batch0, pids[batch0], 5.0),)
    # An exit on the worker's own: replaced, and counted as its failure.
    assert exited.commands == (
        ReportWorkerExit(batch0, pids[batch0], -9, None, 0.0),
        SpawnWorker(batch0),
    )
    assert supervisor.failures(batch0) == 1


def test_stop_by_supervisor_keeps_its_deadline(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    batch0 = _slot(batch_spec, 0)
    stop = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    step = supervisor.handle(
        WorkerReported(pids[batch0], WorkerReport.TERMINATING), fake_clock.advance(1.0)
    )

    assert step.deadline == stop.deadline
    assert supervisor.slots()[batch0].stop_reason is StopReason.SHUTDOWN


def test_status_counts_down_to_kill(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    status = supervisor.status(fake_clock.advance(2.0))

    batch = next(service for service in status.services if service.name == "batch")
    assert [slot.kill_in for slot in batch.slots] == [3.0]


def test_status_running_worker_has_no_kill(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)

    status = supervisor.status(fake_clock.advance(1.0))

    assert {slot.kill_in for service in status.services for slot in service.slots} == {None}


def test_graceful_stop_kills_at_deadline(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    batch0 = _slot(batch_spec, 0)
    stop = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))
    fake_clock.jump_to(stop.deadline)

    step = supervisor.handle(TimerFired(), fake_clock.now())

    assert step.commands == (KillWorker(batch0, pids[batch0], 5.0),)
    assert step.deadline == 40.0
    assert supervisor.slots()[batch0] == SlotView(
        batch0, SlotState.KILLING, pids[batch0], StopReason.SHUTDOWN, None, None
    )


def test_graceful_stop_waits_until_deadline(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))
    fake_clock.jump_to(14.999)

    step = supervisor.handle(TimerFired(), fake_clock.now())

    assert step.commands == ()
    assert step.deadline == 15.0


def test_graceful_stop_exits_zero_when_done(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))
    batch0 = _slot(batch_spec, 0)
    earlier = [
        supervisor.handle(WorkerExited(pids[slot], 0), fake_clock.now())
        for slot in pids
        if slot != batch0
    ]

    step = supervisor.handle(WorkerExited(pids[batch0], 0), fake_clock.now())

    assert [ExitManager(0) in s.commands for s in earlier] == [False, False]
    assert step.commands == (
        ReportWorkerExit(batch0, pids[batch0], 0, StopReason.SHUTDOWN, None),
        ExitManager(0),
    )
    assert step.deadline is None
    assert supervisor.phase is ManagerPhase.DONE


def test_graceful_stop_without_timeout_never_kills(
    web_spec: ServiceSpec, batch_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    specs = [
        evolve(web_spec, graceful_shutdown_timeout=None),
        evolve(batch_spec, graceful_shutdown_timeout=None),
    ]
    supervisor = Supervisor(specs, random=seeded_random)
    _start(supervisor, fake_clock)
    stop = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.now())
    fake_clock.advance(1e6)

    step = supervisor.handle(TimerFired(), fake_clock.now())

    assert stop.deadline is None
    assert step.commands == ()
    assert step.deadline is None
    assert {view.deadline for view in supervisor.slots().values()} == {None}


def test_graceful_stop_second_is_ignored(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    first = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    step = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(1.0))

    assert step.commands == ()
    assert step.deadline == first.deadline


def test_graceful_stop_after_fast_is_ignored(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.FAST), fake_clock.now())

    step = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.now())

    assert step.commands == ()
    assert supervisor.phase is ManagerPhase.INTERRUPTING


# Fast stop


def test_fast_stop_sends_interrupt(
    supervisor: Supervisor,
    fake_clock: FakeClock,
    web_spec: ServiceSpec,
    batch_spec: ServiceSpec,
) -> None:
    pids = _start(supervisor, fake_clock)
    web0, web1, batch0 = _slot(web_spec, 0), _slot(web_spec, 1), _slot(batch_spec, 0)

    step = supervisor.handle(StopRequested(StopMode.FAST), fake_clock.advance(10.0))

    assert step.commands == (
        AnnounceStopping(),
        SignalWorker(web0, pids[web0], INTERRUPT, StopReason.INTERRUPT),
        SignalWorker(web1, pids[web1], INTERRUPT, StopReason.INTERRUPT),
        SignalWorker(batch0, pids[batch0], INTERRUPT, StopReason.INTERRUPT),
    )
    assert step.deadline == 10.0 + FAST_STOP_GRACE
    assert supervisor.phase is ManagerPhase.INTERRUPTING


def test_fast_stop_kills_after_grace(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    pids = _start(supervisor, fake_clock)
    stop = supervisor.handle(StopRequested(StopMode.FAST), fake_clock.advance(10.0))
    fake_clock.jump_to(stop.deadline)

    step = supervisor.handle(TimerFired(), fake_clock.now())

    assert step.commands == tuple(
        KillWorker(slot, pid, FAST_STOP_GRACE) for slot, pid in pids.items()
    )
    assert step.deadline is None


def test_fast_stop_exits_with_one(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    pids = _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.FAST), fake_clock.now())
    *first, last = pids.values()
    for pid in first:
        supervisor.handle(WorkerExited(pid, -2), fake_clock.now())

    step = supervisor.handle(WorkerExited(last, -2), fake_clock.now())

    assert step.commands[-1] == ExitManager(1)
    assert supervisor.phase is ManagerPhase.DONE


def test_fast_stop_during_graceful_moves_deadlines(
    supervisor: Supervisor,
    fake_clock: FakeClock,
    web_spec: ServiceSpec,
    batch_spec: ServiceSpec,
) -> None:
    pids = _start(supervisor, fake_clock)
    web0, web1, batch0 = _slot(web_spec, 0), _slot(web_spec, 1), _slot(batch_spec, 0)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    step = supervisor.handle(StopRequested(StopMode.FAST), fake_clock.advance(2.0))

    deadlines = {slot: view.deadline for slot, view in supervisor.slots().items()}
    assert step.commands == (
        SignalWorker(web0, pids[web0], INTERRUPT, StopReason.INTERRUPT),
        SignalWorker(web1, pids[web1], INTERRUPT, StopReason.INTERRUPT),
        SignalWorker(batch0, pids[batch0], INTERRUPT, StopReason.INTERRUPT),
    )
    assert step.deadline == 12.0 + FAST_STOP_GRACE
    assert deadlines == {web0: 13.0, web1: 13.0, batch0: 13.0}


def test_fast_stop_keeps_closer_deadline(
    supervisor: Supervisor,
    fake_clock: FakeClock,
    web_spec: ServiceSpec,
    batch_spec: ServiceSpec,
) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    step = supervisor.handle(StopRequested(StopMode.FAST), fake_clock.advance(4.5))

    deadlines = {slot: view.deadline for slot, view in supervisor.slots().items()}
    assert step.deadline == 15.0
    assert deadlines == {
        _slot(web_spec, 0): 15.5,
        _slot(web_spec, 1): 15.5,
        _slot(batch_spec, 0): 15.0,
    }


def test_fast_stop_bounds_unlimited_timeout(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    spec = evolve(web_spec, graceful_shutdown_timeout=None)
    supervisor = Supervisor([spec], random=seeded_random)
    _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    step = supervisor.handle(StopRequested(StopMode.FAST), fake_clock.advance(2.0))

    assert step.deadline == 12.0 + FAST_STOP_GRACE


def test_fast_stop_second_is_ignored(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))
    first = supervisor.handle(StopRequested(StopMode.FAST), fake_clock.advance(0.5))

    step = supervisor.handle(StopRequested(StopMode.FAST), fake_clock.advance(0.1))

    assert step.commands == ()
    assert step.deadline == first.deadline


def test_fast_stop_spares_killing_worker(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    web0, web1 = _slot(web_spec, 0), _slot(web_spec, 1)
    stop = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))
    fake_clock.jump_to(stop.deadline)
    supervisor.handle(TimerFired(), fake_clock.now())

    step = supervisor.handle(StopRequested(StopMode.FAST), fake_clock.now())

    assert step.commands == (
        SignalWorker(web0, pids[web0], INTERRUPT, StopReason.INTERRUPT),
        SignalWorker(web1, pids[web1], INTERRUPT, StopReason.INTERRUPT),
    )


# Stops in other phases


def test_stop_drops_backing_off_slot(
    supervisor: Supervisor,
    fake_clock: FakeClock,
    web_spec: ServiceSpec,
    batch_spec: ServiceSpec,
) -> None:
    pids = _start(supervisor, fake_clock)
    web0, web1, batch0 = _slot(web_spec, 0), _slot(web_spec, 1), _slot(batch_spec, 0)
    last_pid = _crash_loop(supervisor, fake_clock, web0, pids[web0], 1)
    supervisor.handle(WorkerExited(last_pid, 1), fake_clock.now())
    assert supervisor.slots()[web0].state is SlotState.BACKING_OFF

    step = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.now())

    assert step.commands == (
        AnnounceStopping(),
        RunTerminateHooks(),
        SignalWorker(web1, pids[web1], TERMINATE, StopReason.SHUTDOWN),
        SignalWorker(batch0, pids[batch0], TERMINATE, StopReason.SHUTDOWN),
    )
    assert web0 not in supervisor.slots()


def test_stop_with_only_backing_off_exits(
    batch_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    supervisor = Supervisor([batch_spec], random=seeded_random)
    batch0 = _slot(batch_spec, 0)
    last_pid = _crash_loop(
        supervisor, fake_clock, batch0, _start(supervisor, fake_clock)[batch0], 1
    )
    supervisor.handle(WorkerExited(last_pid, 1), fake_clock.now())

    step = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.now())

    assert step.commands == (AnnounceStopping(), RunTerminateHooks(), ExitManager(0))
    assert step.deadline is None


def test_stop_before_start_exits_at_once(supervisor: Supervisor) -> None:
    step = supervisor.handle(StopRequested(StopMode.GRACEFUL), 0.0)

    assert step.commands == (AnnounceStopping(), RunTerminateHooks(), ExitManager(0))
    assert supervisor.phase is ManagerPhase.DONE


def test_fast_stop_before_start_exits(supervisor: Supervisor) -> None:
    step = supervisor.handle(StopRequested(StopMode.FAST), 0.0)

    assert step.commands == (AnnounceStopping(), ExitManager(1))


def test_start_after_stop_does_nothing(supervisor: Supervisor) -> None:
    supervisor.handle(StopRequested(StopMode.GRACEFUL), 0.0)

    step = supervisor.handle(Start(), 1.0)

    assert step.commands == ()
    assert supervisor.slots() == {}


def test_spawned_while_stopping_is_stopped(supervisor: Supervisor, web_spec: ServiceSpec) -> None:
    supervisor.handle(Start(), 0.0)
    stop = supervisor.handle(StopRequested(StopMode.GRACEFUL), 1.0)
    web0 = _slot(web_spec, 0)

    step = supervisor.handle(WorkerSpawned(web0, 300), 2.0)

    assert stop.commands == (AnnounceStopping(), RunTerminateHooks())
    assert step.commands == (SignalWorker(web0, 300, TERMINATE, StopReason.SHUTDOWN),)
    assert step.deadline == 32.0


def test_spawn_failed_while_stopping_drops_slot(
    supervisor: Supervisor, web_spec: ServiceSpec, batch_spec: ServiceSpec
) -> None:
    supervisor.handle(Start(), 0.0)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), 1.0)
    supervisor.handle(SpawnFailed(_slot(web_spec, 0), "fork failed"), 1.0)
    supervisor.handle(SpawnFailed(_slot(web_spec, 1), "fork failed"), 1.0)
    batch0 = _slot(batch_spec, 0)

    step = supervisor.handle(SpawnFailed(batch0, "fork failed"), 1.0)

    assert step.commands == (ReportSpawnFailure(batch0, "fork failed", None), ExitManager(0))


# Reload


def test_reload_in_place_signals_after_hooks(
    supervisor: Supervisor,
    fake_clock: FakeClock,
    web_spec: ServiceSpec,
    batch_spec: ServiceSpec,
) -> None:
    pids = _start(supervisor, fake_clock)
    web0, web1, batch0 = _slot(web_spec, 0), _slot(web_spec, 1), _slot(batch_spec, 0)

    step = _reload(supervisor, fake_clock.advance(5.0))

    assert step.commands == (
        AnnounceReloading(),
        RunReloadHooks(),
        SignalWorker(web0, pids[web0], RELOAD, None),
        SignalWorker(web1, pids[web1], RELOAD, None),
        SignalWorker(batch0, pids[batch0], RELOAD, None),
    )
    assert step.deadline is None


def test_reload_restart_terminates_workers(
    web_spec: ServiceSpec, batch_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    web = evolve(web_spec, reload_policy=ReloadPolicy.RESTART)
    supervisor = Supervisor([web, batch_spec], random=seeded_random)
    pids = _start(supervisor, fake_clock)
    web0, web1, batch0 = _slot(web, 0), _slot(web, 1), _slot(batch_spec, 0)

    step = _reload(supervisor, fake_clock.advance(5.0))

    assert step.commands == (
        AnnounceReloading(),
        RunReloadHooks(),
        SignalWorker(web0, pids[web0], TERMINATE, StopReason.RESTART),
        SignalWorker(web1, pids[web1], TERMINATE, StopReason.RESTART),
        SignalWorker(batch0, pids[batch0], RELOAD, None),
    )
    assert step.deadline == 35.0


def test_reload_restart_respawns_at_once(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    web = evolve(web_spec, reload_policy=ReloadPolicy.RESTART)
    supervisor = Supervisor([web], random=seeded_random)
    web0 = _slot(web, 0)
    pid = _crash_loop(supervisor, fake_clock, web0, _start(supervisor, fake_clock)[web0], 1)
    _reload(supervisor, fake_clock.advance(1.0))

    step = supervisor.handle(WorkerExited(pid, 0), fake_clock.advance(1.0))

    assert step.commands == (
        ReportWorkerExit(web0, pid, 0, StopReason.RESTART, 0.0),
        SpawnWorker(web0),
    )


def test_reload_restart_counts_no_failure(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    web = evolve(web_spec, reload_policy=ReloadPolicy.RESTART)
    supervisor = Supervisor([web], random=seeded_random)
    web0 = _slot(web, 0)
    pid = _crash_loop(supervisor, fake_clock, web0, _start(supervisor, fake_clock)[web0], 1)
    _reload(supervisor, fake_clock.advance(1.0))

    supervisor.handle(WorkerExited(pid, 0), fake_clock.advance(1.0))

    assert supervisor.failures(web0) == 1


def test_reload_skips_slots_without_worker(
    supervisor: Supervisor,
    fake_clock: FakeClock,
    web_spec: ServiceSpec,
    batch_spec: ServiceSpec,
) -> None:
    pids = _start(supervisor, fake_clock)
    web0, web1, batch0 = _slot(web_spec, 0), _slot(web_spec, 1), _slot(batch_spec, 0)
    last_pid = _crash_loop(supervisor, fake_clock, web0, pids[web0], 1)
    supervisor.handle(WorkerExited(last_pid, 1), fake_clock.now())

    step = _reload(supervisor, fake_clock.now())

    assert step.commands == (
        AnnounceReloading(),
        RunReloadHooks(),
        SignalWorker(web1, pids[web1], RELOAD, None),
        SignalWorker(batch0, pids[batch0], RELOAD, None),
    )


def test_reload_while_stopping_does_nothing(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    stop = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(1.0))

    step = _reload(supervisor, fake_clock.advance(1.0))

    assert step.commands == ()
    assert step.deadline == stop.deadline


def test_reload_before_start_does_nothing(supervisor: Supervisor) -> None:
    step = _reload(supervisor, 0.0)

    assert step.commands == ()


# Worker count changes


def test_workers_changed_up_spawns_missing(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    _start(supervisor, fake_clock)

    step = supervisor.handle(WorkersChanged(web_spec.service_id, 4), fake_clock.advance(1.0))

    assert step.commands == (SpawnWorker(_slot(web_spec, 2)), SpawnWorker(_slot(web_spec, 3)))
    assert supervisor.spec(web_spec.service_id) == evolve(web_spec, workers=4)


def test_workers_changed_down_retires_highest(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    web = evolve(web_spec, workers=3)
    supervisor = Supervisor([web], random=seeded_random)
    pids = _start(supervisor, fake_clock)
    web1, web2 = _slot(web, 1), _slot(web, 2)

    step = supervisor.handle(WorkersChanged(web.service_id, 1), fake_clock.advance(1.0))

    assert step.commands == (
        SignalWorker(web2, pids[web2], TERMINATE, StopReason.RETIRE),
        SignalWorker(web1, pids[web1], TERMINATE, StopReason.RETIRE),
    )
    assert step.deadline == 31.0


def test_retired_worker_is_not_respawned(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    web = evolve(web_spec, workers=3)
    supervisor = Supervisor([web], random=seeded_random)
    pids = _start(supervisor, fake_clock)
    web2 = _slot(web, 2)
    supervisor.handle(WorkersChanged(web.service_id, 2), fake_clock.advance(1.0))

    step = supervisor.handle(WorkerExited(pids[web2], 0), fake_clock.advance(1.0))

    assert step.commands == (ReportWorkerExit(web2, pids[web2], 0, StopReason.RETIRE, None),)
    assert web2 not in supervisor.slots()
    assert step.deadline is None


def test_workers_down_drops_backing_off_slot(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    web1 = _slot(web_spec, 1)
    last_pid = _crash_loop(supervisor, fake_clock, web1, pids[web1], 1)
    supervisor.handle(WorkerExited(last_pid, 1), fake_clock.now())

    step = supervisor.handle(WorkersChanged(web_spec.service_id, 1), fake_clock.now())

    assert step.commands == ()
    assert web1 not in supervisor.slots()
    assert step.deadline is None


def test_workers_down_then_up_restores_slot(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    web = evolve(web_spec, workers=3)
    supervisor = Supervisor([web], random=seeded_random)
    pids = _start(supervisor, fake_clock)
    web2 = _slot(web, 2)
    supervisor.handle(WorkersChanged(web.service_id, 2), fake_clock.advance(1.0))
    back_up = supervisor.handle(WorkersChanged(web.service_id, 3), fake_clock.advance(1.0))

    step = supervisor.handle(WorkerExited(pids[web2], 0), fake_clock.advance(1.0))

    assert back_up.commands == ()
    assert step.commands == (
        ReportWorkerExit(web2, pids[web2], 0, StopReason.RETIRE, 0.0),
        SpawnWorker(web2),
    )
    assert supervisor.failures(web2) == 0


def test_workers_changed_before_start_applies(
    supervisor: Supervisor, web_spec: ServiceSpec, batch_spec: ServiceSpec
) -> None:
    changed = supervisor.handle(WorkersChanged(web_spec.service_id, 3), 0.0)

    step = supervisor.handle(Start(), 0.0)

    assert changed.commands == ()
    assert step.commands == (
        SpawnWorker(_slot(web_spec, 0)),
        SpawnWorker(_slot(web_spec, 1)),
        SpawnWorker(_slot(web_spec, 2)),
        SpawnWorker(_slot(batch_spec, 0)),
    )


def test_workers_changed_unknown_service_raises(supervisor: Supervisor) -> None:
    unknown = ServiceId(uuid.UUID(int=99))

    with pytest.raises(ValueError, match=f"unknown service id {unknown}"):
        supervisor.handle(WorkersChanged(unknown, 2), 0.0)


def test_workers_changed_zero_raises(supervisor: Supervisor, web_spec: ServiceSpec) -> None:
    with pytest.raises(ValueError, match="workers must be >= 1, got 0"):
        supervisor.handle(WorkersChanged(web_spec.service_id, 0), 0.0)


# Shutdown timeout changes


def test_timeout_change_applies_to_later_stops(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    _start(supervisor, fake_clock)
    changed = supervisor.handle(
        ShutdownTimeoutChanged(batch_spec.service_id, 2.0), fake_clock.advance(1.0)
    )

    step = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(9.0))

    assert changed.commands == ()
    assert step.deadline == 12.0
    assert supervisor.slots()[_slot(batch_spec, 0)].deadline == 12.0


def test_timeout_change_spares_started_stop(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    step = supervisor.handle(
        ShutdownTimeoutChanged(batch_spec.service_id, 1.0), fake_clock.advance(1.0)
    )

    assert step.commands == ()
    assert step.deadline == 15.0


def test_timeout_change_to_none_never_kills(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(ShutdownTimeoutChanged(batch_spec.service_id, None), fake_clock.now())

    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    assert supervisor.slots()[_slot(batch_spec, 0)].deadline is None


def test_timeout_change_unknown_service_raises(supervisor: Supervisor) -> None:
    unknown = ServiceId(uuid.UUID(int=99))

    with pytest.raises(ValueError, match=f"unknown service id {unknown}"):
        supervisor.handle(ShutdownTimeoutChanged(unknown, 1.0), 0.0)


# Services and spawn results


def test_service_added_while_running_spawns(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    extra = ServiceSpec(ServiceId(uuid.UUID(int=3)), "extra", 2, 1.0)

    step = supervisor.handle(ServiceAdded(extra), fake_clock.advance(1.0))

    assert step.commands == (SpawnWorker(_slot(extra, 0)), SpawnWorker(_slot(extra, 1)))


def test_service_added_before_start_waits(supervisor: Supervisor) -> None:
    extra = ServiceSpec(ServiceId(uuid.UUID(int=3)), "extra", 2, 1.0)

    step = supervisor.handle(ServiceAdded(extra), 0.0)

    assert step.commands == ()
    assert list(supervisor.specs)[-1] == extra.service_id


def test_service_added_twice_raises(supervisor: Supervisor, web_spec: ServiceSpec) -> None:
    with pytest.raises(ValueError, match="already in use"):
        supervisor.handle(ServiceAdded(web_spec), 0.0)


def test_spawn_failed_backs_off(supervisor: Supervisor, web_spec: ServiceSpec) -> None:
    supervisor.handle(Start(), 0.0)
    web0 = _slot(web_spec, 0)

    step = supervisor.handle(SpawnFailed(web0, "fork failed"), 1.0)

    report = step.commands[0]
    assert isinstance(report, ReportSpawnFailure)
    assert report.retry_delay is not None
    assert step.commands == (ReportSpawnFailure(web0, "fork failed", report.retry_delay),)
    assert SECOND_DELAY_MIN <= report.retry_delay <= SECOND_DELAY_MAX
    assert step.deadline == 1.0 + report.retry_delay


def test_spawn_failed_retries_at_deadline(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    supervisor.handle(Start(), fake_clock.now())
    web0 = _slot(web_spec, 0)
    failed = supervisor.handle(SpawnFailed(web0, "fork failed"), fake_clock.advance(1.0))
    fake_clock.jump_to(failed.deadline)

    step = supervisor.handle(TimerFired(), fake_clock.now())

    assert step.commands == (SpawnWorker(web0),)


def test_exit_of_unknown_pid_does_nothing(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    before = supervisor.slots()

    step = supervisor.handle(WorkerExited(99_999, 0), fake_clock.advance(1.0))

    assert step.commands == ()
    assert step.deadline is None
    assert supervisor.slots() == before


def test_exit_report_after_kill(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    batch0 = _slot(batch_spec, 0)
    stop = supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.now())
    supervisor.handle(TimerFired(), fake_clock.jump_to(stop.deadline))

    step = supervisor.handle(WorkerExited(pids[batch0], -9), fake_clock.now())

    assert step.commands == (ReportWorkerExit(batch0, pids[batch0], -9, StopReason.SHUTDOWN, None),)


# Views


def test_slots_view_running_and_spawning(
    supervisor: Supervisor, web_spec: ServiceSpec, batch_spec: ServiceSpec
) -> None:
    supervisor.handle(Start(), 0.0)
    web0, web1, batch0 = _slot(web_spec, 0), _slot(web_spec, 1), _slot(batch_spec, 0)

    supervisor.handle(WorkerSpawned(web0, 100), 0.0)

    assert supervisor.slots() == {
        web0: SlotView(web0, SlotState.RUNNING, 100, None, None, None),
        web1: SlotView(web1, SlotState.SPAWNING, None, None, None, None),
        batch0: SlotView(batch0, SlotState.SPAWNING, None, None, None, None),
    }
    assert supervisor.slot_of_pid(100) == web0


def test_slots_view_backing_off(
    supervisor: Supervisor, fake_clock: FakeClock, web_spec: ServiceSpec
) -> None:
    web0 = _slot(web_spec, 0)
    pid = _crash_loop(supervisor, fake_clock, web0, _start(supervisor, fake_clock)[web0], 1)

    step = supervisor.handle(WorkerExited(pid, 1), fake_clock.advance(1.0))

    respawn_at = fake_clock.now() + _respawn_delay(step)
    assert supervisor.slots()[web0] == SlotView(
        web0, SlotState.BACKING_OFF, None, None, respawn_at, None
    )
    assert supervisor.slot_of_pid(pid) is None


def test_slots_view_stopping(
    supervisor: Supervisor, fake_clock: FakeClock, batch_spec: ServiceSpec
) -> None:
    pids = _start(supervisor, fake_clock)
    batch0 = _slot(batch_spec, 0)

    supervisor.handle(StopRequested(StopMode.GRACEFUL), fake_clock.advance(10.0))

    assert supervisor.slots()[batch0] == SlotView(
        batch0, SlotState.STOPPING, pids[batch0], StopReason.SHUTDOWN, None, 15.0
    )


def test_repr_of_new_supervisor(supervisor: Supervisor) -> None:
    text = repr(supervisor)

    assert text == "<Supervisor phase=new services=2 slots=0>"


def test_repr_counts_slot_states(
    supervisor: Supervisor, web_spec: ServiceSpec, batch_spec: ServiceSpec
) -> None:
    supervisor.handle(Start(), 0.0)
    supervisor.handle(WorkerSpawned(_slot(web_spec, 0), 100), 0.0)
    supervisor.handle(WorkerSpawned(_slot(batch_spec, 0), 101), 0.0)
    supervisor.handle(StopRequested(StopMode.GRACEFUL), 1.0)

    text = repr(supervisor)

    assert text == "<Supervisor phase=stopping services=2 slots=3 spawning=1 stopping=2>"


def _reload(supervisor: Supervisor, now: float) -> Step:
    """Request a reload and report its hooks done, as the runtime does.

    Returns one step with the commands of both, in order, and the deadline
    of the last.
    """
    requested = supervisor.handle(ReloadRequested(), now)
    if RunReloadHooks() not in requested.commands:
        return requested
    done = supervisor.handle(ReloadHooksDone(cancelled=False), now)
    return Step(requested.commands + done.commands, done.deadline)


def test_reload_waits_for_hooks(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)

    step = supervisor.handle(ReloadRequested(), fake_clock.now())

    assert step.commands == (AnnounceReloading(), RunReloadHooks())


def test_reload_cancelled_by_hook(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(ReloadRequested(), fake_clock.now())

    before = supervisor.status(fake_clock.now())
    step = supervisor.handle(ReloadHooksDone(cancelled=True), fake_clock.now())

    assert step.commands == (AnnounceReloaded(cancelled=True),)
    assert before.last_reload is None
    assert supervisor.status(fake_clock.now()).last_reload is ReloadOutcome.CANCELLED


def _reloading_one_worker(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> tuple[Supervisor, int, float]:
    """Start one web worker, then have it reload 1 s later; return the
    supervisor, the worker's pid and the time of the reload request."""
    supervisor = Supervisor([evolve(web_spec, workers=1)], random=seeded_random)
    pid = _start(supervisor, fake_clock)[_slot(web_spec, 0)]
    first = fake_clock.advance(1.0)
    _reload(supervisor, first)
    return supervisor, pid, first


def test_cancelled_reload_leaves_earlier_one(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    supervisor, pid, first = _reloading_one_worker(web_spec, fake_clock, seeded_random)
    # A second request, cancelled by a hook, while the worker still runs
    # the first reload.
    supervisor.handle(ReloadRequested(), fake_clock.advance(1.0))
    cancelled = supervisor.handle(ReloadHooksDone(cancelled=True), fake_clock.now())
    after_cancel = supervisor.status(fake_clock.now()).last_reload

    done = supervisor.handle(
        WorkerReported(pid, WorkerReport.RELOADED, first + 0.5), fake_clock.advance(0.5)
    )

    assert cancelled.commands == (AnnounceReloaded(cancelled=True),)
    assert after_cancel is ReloadOutcome.CANCELLED
    assert done.commands == (AnnounceReloaded(),)
    assert supervisor.status(fake_clock.now()).last_reload is ReloadOutcome.DONE


def test_reload_during_hooks_is_coalesced(supervisor: Supervisor, fake_clock: FakeClock) -> None:
    _start(supervisor, fake_clock)
    supervisor.handle(ReloadRequested(), fake_clock.now())

    step = supervisor.handle(ReloadRequested(), fake_clock.now())

    assert step.commands == ()


def test_reload_completes_on_latest_report(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    supervisor, pid, first = _reloading_one_worker(web_spec, fake_clock, seeded_random)
    # A second request while the worker still runs the first reload.
    second = fake_clock.advance(1.0)
    _reload(supervisor, second)

    earlier = supervisor.handle(
        WorkerReported(pid, WorkerReport.RELOADED, first + 0.5), fake_clock.advance(0.5)
    )
    latest = supervisor.handle(
        WorkerReported(pid, WorkerReport.RELOADED, second + 0.5), fake_clock.advance(0.5)
    )

    assert AnnounceReloaded() not in earlier.commands
    assert AnnounceReloaded() in latest.commands


def test_reload_report_during_new_hooks_waits(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    # The worker finishes the first reload while the hooks of a second
    # request run, before the supervisor has signalled it again.
    supervisor, pid, first = _reloading_one_worker(web_spec, fake_clock, seeded_random)
    supervisor.handle(ReloadRequested(), fake_clock.advance(1.0))

    during_hooks = supervisor.handle(
        WorkerReported(pid, WorkerReport.RELOADED, first + 0.5), fake_clock.advance(0.1)
    )
    second = fake_clock.advance(0.1)
    hooks_done = supervisor.handle(ReloadHooksDone(cancelled=False), second)
    latest = supervisor.handle(
        WorkerReported(pid, WorkerReport.RELOADED, second + 0.5), fake_clock.advance(0.5)
    )

    assert AnnounceReloaded() not in during_hooks.commands
    assert AnnounceReloaded() not in hooks_done.commands
    assert AnnounceReloaded() in latest.commands


def test_reload_of_unready_worker_waits_for_reload(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    supervisor = Supervisor([evolve(web_spec, workers=1)], random=seeded_random)
    slot = _slot(web_spec, 0)
    supervisor.handle(Start(), fake_clock.now())
    supervisor.handle(WorkerSpawned(slot, 100), fake_clock.now())
    requested = fake_clock.advance(0.1)
    _reload(supervisor, requested)

    ready = supervisor.handle(WorkerReported(100, WorkerReport.READY), fake_clock.advance(1.0))
    reloaded = supervisor.handle(
        WorkerReported(100, WorkerReport.RELOADED, requested + 1.0), fake_clock.advance(0.5)
    )

    assert AnnounceReloaded() not in ready.commands
    assert AnnounceReloaded() in reloaded.commands


def test_reload_report_without_time_ends_the_reload(
    web_spec: ServiceSpec, fake_clock: FakeClock, seeded_random: Random
) -> None:
    supervisor = Supervisor([evolve(web_spec, workers=1)], random=seeded_random)
    pid = _start(supervisor, fake_clock)[_slot(web_spec, 0)]
    _reload(supervisor, fake_clock.advance(1.0))

    step = supervisor.handle(WorkerReported(pid, WorkerReport.RELOADED), fake_clock.advance(1.0))

    assert AnnounceReloaded() in step.commands


@pytest.mark.parametrize(
    ("reason", "runs_hooks"),
    [
        (None, True),
        (StopReason.SHUTDOWN, False),
        (StopReason.INTERRUPT, False),
        *[
            (reason, True)
            for reason in StopReason
            if reason not in (StopReason.SHUTDOWN, StopReason.INTERRUPT)
        ],
    ],
)
def test_dead_worker_hooks_skip_shutdown_stops(
    web_spec: ServiceSpec, reason: StopReason | None, runs_hooks: bool
) -> None:
    exit_report = ReportWorkerExit(_slot(web_spec, 0), 1234, 0, reason, None)

    assert exit_report.runs_dead_worker_hooks is runs_hooks
