"""Tests of the supervision policies of ``Supervisor``, with a fake clock.

Restart policy, restart intensity, stop on exit, readiness and liveness
deadlines. Each test builds one service ``svc`` (and, where two services
matter, ``other``), whose workers get pids from 100 up in spawn order.
"""

from __future__ import annotations

import itertools
import random
import uuid
from typing import Any

import pytest

from cotyledon.core import GIVE_UP_EXIT_STATUS
from cotyledon.core import MAX_AGE_JITTER
from cotyledon.core import ROLLING_READY_TIMEOUT
from cotyledon.core import AnnounceReady
from cotyledon.core import AnnounceReloaded
from cotyledon.core import AnnounceStopping
from cotyledon.core import ExitManager
from cotyledon.core import GiveUpAction
from cotyledon.core import KillWorker
from cotyledon.core import ManagerPhase
from cotyledon.core import ReloadHooksDone
from cotyledon.core import ReloadOutcome
from cotyledon.core import ReloadPolicy
from cotyledon.core import ReloadRequested
from cotyledon.core import ReportServiceEnded
from cotyledon.core import ReportWorkerExit
from cotyledon.core import RestartIntensity
from cotyledon.core import RestartPolicy
from cotyledon.core import RunTerminateHooks
from cotyledon.core import ServiceId
from cotyledon.core import ServiceSpec
from cotyledon.core import ServiceState
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
from cotyledon.core import WorkerId
from cotyledon.core import WorkerReport
from cotyledon.core import WorkerReported
from cotyledon.core import WorkersChanged
from cotyledon.core import WorkerSignal
from cotyledon.core import WorkerSpawned
from cotyledon.core import WorkersReported
from cotyledon_testkit import FakeClock

SVC = ServiceId(uuid.UUID(int=1))
OTHER = ServiceId(uuid.UUID(int=2))


def _spec(
    service_id: ServiceId = SVC, workers: int = 1, timeout: float | None = 5.0, **policies: Any
) -> ServiceSpec:
    name = "svc" if service_id == SVC else "other"
    return ServiceSpec(service_id, name, workers, timeout, **policies)


def _slot(worker_id: int = 0, service_id: ServiceId = SVC) -> Slot:
    return Slot(service_id, WorkerId(worker_id))


class _Run:
    """A supervisor played by hand: spawns succeed at once, pids from 100."""

    def __init__(self, *specs: ServiceSpec, jitter: float = 0.5) -> None:
        self.clock = FakeClock()
        self.supervisor = Supervisor(specs, random=lambda: jitter)
        self.pids: dict[Slot, int] = {}
        self._next_pid = itertools.count(100)
        self.deadline: float | None = None

    def handle(self, event: Any) -> Step:
        step = self.supervisor.handle(event, self.clock.now())
        self.deadline = step.deadline
        for command in step.commands:
            if isinstance(command, SpawnWorker):
                pid = next(self._next_pid)
                self.pids[command.slot] = pid
                spawned = self.supervisor.handle(WorkerSpawned(command.slot, pid), self.clock.now())
                self.deadline = spawned.deadline
                step = Step(step.commands + spawned.commands, spawned.deadline)
        return step

    def start(self) -> Step:
        return self.handle(Start())

    def exit(self, slot: Slot, code: int) -> Step:
        return self.handle(WorkerExited(self.pids[slot], code))

    def report(self, slot: Slot, report: WorkerReport) -> Step:
        return self.handle(WorkerReported(self.pids[slot], report))

    def at(self, when: float) -> Step:
        self.clock.jump_to(when)
        return self.handle(TimerFired())

    def respawn(self, slot: Slot) -> None:
        """Wait out the slot's backoff, if any, so that it spawns."""
        view = self.supervisor.slots()[slot]
        if view.state is SlotState.BACKING_OFF:
            assert view.respawn_at is not None
            self.at(view.respawn_at)

    def state(self, slot: Slot) -> SlotState:
        return self.supervisor.slots()[slot].state

    def service_state(self, service_id: ServiceId = SVC) -> ServiceState:
        status = self.supervisor.status(self.clock.now())
        return next(s.state for s in status.services if s.service_id == service_id)


def _exit_reports(step: Step) -> list[ReportWorkerExit]:
    return [command for command in step.commands if isinstance(command, ReportWorkerExit)]


# Restart policy


@pytest.mark.parametrize(
    ("policy", "code", "restarted"),
    [
        (RestartPolicy.ALWAYS, 0, True),
        (RestartPolicy.ALWAYS, 1, True),
        (RestartPolicy.ON_FAILURE, 0, False),
        (RestartPolicy.ON_FAILURE, 1, True),
        (RestartPolicy.ON_FAILURE, -9, True),
        (RestartPolicy.NEVER, 1, False),
    ],
)
def test_restart_policy_decides_respawn(policy: RestartPolicy, code: int, restarted: bool) -> None:
    run = _Run(_spec(workers=2, restart=policy))
    run.start()

    step = run.exit(_slot(0), code)

    assert (SpawnWorker(_slot(0)) in step.commands) is restarted
    assert run.state(_slot(0)) is (SlotState.RUNNING if restarted else SlotState.FINISHED)


def test_prevent_exit_status_finishes_slot() -> None:
    run = _Run(_spec(workers=2, restart_prevent_exit_statuses={3}))
    run.start()

    step = run.exit(_slot(0), 3)

    assert _exit_reports(step) == [ReportWorkerExit(_slot(0), 100, 3, None, None)]
    assert run.state(_slot(0)) is SlotState.FINISHED


def test_prevent_exit_status_other_status_restarts() -> None:
    run = _Run(_spec(restart_prevent_exit_statuses={3}))
    run.start()

    step = run.exit(_slot(0), 4)

    assert SpawnWorker(_slot(0)) in step.commands


def test_finished_service_is_reported_once() -> None:
    run = _Run(_spec(workers=2, restart=RestartPolicy.NEVER), _spec(OTHER))
    run.start()
    first = run.exit(_slot(0), 0)

    step = run.exit(_slot(1), 0)

    assert ReportServiceEnded(SVC, ServiceState.FINISHED) not in first.commands
    assert ReportServiceEnded(SVC, ServiceState.FINISHED) in step.commands
    assert run.service_state() is ServiceState.FINISHED
    assert run.supervisor.phase is ManagerPhase.RUNNING


def test_finished_status_keeps_exit_code() -> None:
    run = _Run(_spec(restart=RestartPolicy.NEVER), _spec(OTHER))
    run.start()
    run.exit(_slot(0), 4)

    status = run.supervisor.status(run.clock.now())

    worker = status.services[0].slots[0]
    assert worker.state is SlotState.FINISHED
    assert worker.last_exit_code == 4
    assert status.summary() == "svc 0/1 finished, other 0/1"


def test_every_service_finished_stops_manager() -> None:
    run = _Run(_spec(restart=RestartPolicy.NEVER))
    run.start()

    step = run.exit(_slot(0), 0)

    assert step.commands[-3:] == (AnnounceStopping(), RunTerminateHooks(), ExitManager(0))


def test_finished_slot_ignored_for_readiness() -> None:
    run = _Run(_spec(workers=2, restart=RestartPolicy.NEVER))
    run.start()
    run.exit(_slot(0), 0)

    step = run.report(_slot(1), WorkerReport.READY)

    assert AnnounceReady() in step.commands


def test_finished_slot_dropped_on_fewer_workers() -> None:
    run = _Run(_spec(workers=2, restart=RestartPolicy.NEVER), _spec(OTHER))
    run.start()
    run.exit(_slot(1), 0)

    run.handle(WorkersChanged(SVC, 1))

    assert _slot(1) not in run.supervisor.slots()


# Restart intensity


def test_intensity_allows_up_to_limit() -> None:
    intensity = RestartIntensity(2, 10.0)

    allowed = [intensity.allow(t) for t in (0.0, 1.0, 2.0)]

    assert allowed == [True, True, False]


def test_intensity_restart_at_period_boundary() -> None:
    intensity = RestartIntensity(1, 10.0)
    intensity.allow(0.0)

    assert intensity.allow(10.0)


def test_intensity_restart_just_inside_period() -> None:
    intensity = RestartIntensity(1, 10.0)
    intensity.allow(0.0)

    assert not intensity.allow(9.999)


def test_intensity_zero_gives_up_first() -> None:
    assert not RestartIntensity(0, 10.0).allow(0.0)


def test_give_up_stop_ends_manager_with_status() -> None:
    run = _Run(_spec(max_restarts=(1, 60.0)), _spec(OTHER))
    run.start()
    run.exit(_slot(0), 1)
    run.respawn(_slot(0))

    step = run.exit(_slot(0), 1)

    assert ReportServiceEnded(SVC, ServiceState.GIVEN_UP) in step.commands
    assert SpawnWorker(_slot(0)) not in step.commands
    phase = run.supervisor.phase
    run.exit(_slot(0, OTHER), 0)
    assert phase is ManagerPhase.STOPPING
    assert run.supervisor.phase is ManagerPhase.DONE


def test_give_up_stop_exit_status_documented() -> None:
    run = _Run(_spec(max_restarts=(0, 60.0)))
    run.start()

    step = run.exit(_slot(0), 1)

    assert step.commands[-1] == ExitManager(GIVE_UP_EXIT_STATUS)


def test_give_up_reported_before_stopping() -> None:
    run = _Run(_spec(max_restarts=(0, 60.0)), _spec(OTHER))
    run.start()

    step = run.exit(_slot(0), 1)

    ended = step.commands.index(ReportServiceEnded(SVC, ServiceState.GIVEN_UP))
    assert ended < step.commands.index(AnnounceStopping())


def test_give_up_continue_keeps_other_services() -> None:
    run = _Run(
        _spec(workers=2, max_restarts=(0, 60.0), on_give_up=GiveUpAction.CONTINUE),
        _spec(OTHER),
    )
    run.start()

    step = run.exit(_slot(0), 1)

    assert SignalWorker(_slot(1), 101, WorkerSignal.TERMINATE, StopReason.GIVE_UP) in step.commands
    assert run.supervisor.phase is ManagerPhase.RUNNING
    run.exit(_slot(1), 0)
    assert run.state(_slot(1)) is SlotState.FINISHED
    assert run.service_state() is ServiceState.GIVEN_UP
    assert run.state(_slot(0, OTHER)) is SlotState.RUNNING


def test_give_up_continue_last_service_stops() -> None:
    run = _Run(_spec(max_restarts=(0, 60.0), on_give_up=GiveUpAction.CONTINUE))
    run.start()

    step = run.exit(_slot(0), 1)

    assert step.commands[-1] == ExitManager(GIVE_UP_EXIT_STATUS)


def test_give_up_restart_past_period_allowed() -> None:
    run = _Run(_spec(max_restarts=(1, 10.0)))
    run.start()
    run.exit(_slot(0), 1)
    run.respawn(_slot(0))
    run.clock.jump_to(10.0)

    step = run.exit(_slot(0), 1)

    assert ReportServiceEnded(SVC, ServiceState.GIVEN_UP) not in step.commands


def test_give_up_restart_just_inside_period() -> None:
    run = _Run(_spec(max_restarts=(1, 10.0)))
    run.start()
    run.exit(_slot(0), 1)
    run.respawn(_slot(0))
    run.clock.jump_to(9.999)

    step = run.exit(_slot(0), 1)

    assert ReportServiceEnded(SVC, ServiceState.GIVEN_UP) in step.commands


def test_give_up_window_slides_at_boundary() -> None:
    run = _Run(_spec(max_restarts=(2, 10.0)))
    run.start()
    outcomes = []

    # Restarts at 0 and 5 s fill the window. At 10 s the first is exactly
    # one period old and no longer counts, but at 14.999 s both others do.
    for when in (0.0, 5.0, 10.0, 14.999):
        run.respawn(_slot(0))
        run.clock.jump_to(when)
        step = run.exit(_slot(0), 1)
        outcomes.append(ReportServiceEnded(SVC, ServiceState.GIVEN_UP) in step.commands)

    assert outcomes == [False, False, False, True]


def test_give_up_requested_stops_not_counted() -> None:
    run = _Run(_spec(workers=2, max_restarts=(0, 60.0)), _spec(OTHER))
    run.start()
    run.handle(WorkersChanged(SVC, 1))

    step = run.exit(_slot(1), 0)

    assert ReportServiceEnded(SVC, ServiceState.GIVEN_UP) not in step.commands


# Stop the manager on exit


@pytest.mark.parametrize(("code", "status"), [(0, 0), (3, 3), (-9, 137)])
def test_stop_on_exit_uses_worker_status(code: int, status: int) -> None:
    run = _Run(_spec(stop_manager_on_exit=True), _spec(OTHER))
    run.start()
    run.exit(_slot(0), code)

    step = run.exit(_slot(0, OTHER), 0)

    assert step.commands[-1] == ExitManager(status)


def test_stop_on_exit_stops_other_services() -> None:
    run = _Run(_spec(stop_manager_on_exit=True), _spec(OTHER))
    run.start()

    step = run.exit(_slot(0), 2)

    assert (
        SignalWorker(_slot(0, OTHER), 101, WorkerSignal.TERMINATE, StopReason.SHUTDOWN)
        in step.commands
    )
    assert SpawnWorker(_slot(0)) not in step.commands


def test_stop_on_exit_ignores_requested_stop() -> None:
    run = _Run(_spec(stop_manager_on_exit=True), _spec(OTHER))
    run.start()
    run.handle(StopRequested(StopMode.GRACEFUL))
    run.exit(_slot(0), 5)

    step = run.exit(_slot(0, OTHER), 0)

    assert step.commands[-1] == ExitManager(0)


def test_stop_on_exit_fast_stop_keeps_status() -> None:
    run = _Run(_spec(stop_manager_on_exit=True), _spec(OTHER))
    run.start()
    run.exit(_slot(0), 4)
    run.handle(StopRequested(StopMode.FAST))

    step = run.exit(_slot(0, OTHER), -2)

    assert step.commands[-1] == ExitManager(4)


# Readiness


def test_startup_timeout_stops_unready_worker() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()

    step = run.at(2.0)

    assert step.commands == (
        SignalWorker(_slot(0), 100, WorkerSignal.TERMINATE, StopReason.STARTUP_TIMEOUT),
    )
    assert run.deadline == 7.0


def test_startup_timeout_sets_deadline() -> None:
    run = _Run(_spec(startup_timeout=2.0))

    run.start()

    assert run.deadline == 2.0


def test_startup_timeout_ready_in_time() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()
    run.clock.jump_to(1.9)
    run.report(_slot(0), WorkerReport.READY)

    assert run.deadline is None


def test_startup_timeout_kill_then_restart() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()
    run.at(2.0)

    killed = run.at(7.0)
    step = run.exit(_slot(0), -9)

    assert killed.commands == (KillWorker(_slot(0), 100, 5.0),)
    assert _exit_reports(step)[0].stop_reason is StopReason.STARTUP_TIMEOUT
    assert SpawnWorker(_slot(0)) in step.commands
    assert run.supervisor.status(run.clock.now()).restarts == 1


def test_startup_timeout_counts_toward_intensity() -> None:
    run = _Run(_spec(startup_timeout=2.0, max_restarts=(0, 60.0)))
    run.start()
    run.at(2.0)

    step = run.exit(_slot(0), 0)

    assert ReportServiceEnded(SVC, ServiceState.GIVEN_UP) in step.commands


def test_startup_timeout_racing_shutdown() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()
    run.clock.jump_to(2.0)

    step = run.handle(StopRequested(StopMode.GRACEFUL))

    signals = [c for c in step.commands if isinstance(c, SignalWorker)]
    assert signals == [SignalWorker(_slot(0), 100, WorkerSignal.TERMINATE, StopReason.SHUTDOWN)]
    assert run.deadline == 7.0


def test_startup_timeout_never_restarts_after_shutdown() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()
    run.at(2.0)
    run.handle(StopRequested(StopMode.GRACEFUL))

    step = run.exit(_slot(0), 0)

    assert step.commands[-1] == ExitManager(0)


def test_startup_deadline_after_shutdown_ignored() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()
    run.clock.jump_to(1.0)
    run.handle(StopRequested(StopMode.GRACEFUL))

    step = run.at(2.0)

    assert step.commands == ()
    assert run.deadline == 6.0


def test_startup_timeout_stop_then_shutdown() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()
    run.at(2.0)
    run.clock.jump_to(3.0)

    step = run.handle(StopRequested(StopMode.GRACEFUL))

    # The stop already requested keeps its reason and its kill deadline.
    assert [c for c in step.commands if isinstance(c, SignalWorker)] == []
    assert run.deadline == 7.0
    assert run.supervisor.slots()[_slot(0)].stop_reason is StopReason.STARTUP_TIMEOUT


def test_startup_timeout_stop_then_fast_stop() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()
    run.at(2.0)
    run.clock.jump_to(3.0)

    step = run.handle(StopRequested(StopMode.FAST))
    killed = run.at(4.0)
    exited = run.exit(_slot(0), -9)

    assert (
        SignalWorker(_slot(0), 100, WorkerSignal.INTERRUPT, StopReason.INTERRUPT) in step.commands
    )
    assert killed.commands == (KillWorker(_slot(0), 100, 2.0),)
    assert exited.commands[-1] == ExitManager(1)


def test_startup_timeout_racing_shutdown_no_restart() -> None:
    run = _Run(_spec(startup_timeout=2.0, max_restarts=(0, 60.0)), _spec(OTHER))
    run.start()
    run.at(2.0)
    run.handle(StopRequested(StopMode.GRACEFUL))
    run.exit(_slot(0, OTHER), 0)

    step = run.exit(_slot(0), 0)

    # A late worker that ends during the shutdown is not a failure to count.
    assert ReportServiceEnded(SVC, ServiceState.GIVEN_UP) not in step.commands
    assert SpawnWorker(_slot(0)) not in step.commands
    assert step.commands[-1] == ExitManager(0)


def test_ready_at_startup_deadline_kept() -> None:
    run = _Run(_spec(startup_timeout=2.0))
    run.start()
    run.clock.jump_to(2.0)

    step = run.report(_slot(0), WorkerReport.READY)

    assert [c for c in step.commands if isinstance(c, SignalWorker)] == []
    assert run.state(_slot(0)) is SlotState.RUNNING


# Liveness
# Liveness


def test_heartbeat_timeout_stops_silent_worker() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)

    step = run.at(3.0)

    assert step.commands == (SignalWorker(_slot(0), 100, WorkerSignal.TERMINATE, StopReason.HUNG),)


def test_heartbeat_pushes_deadline_back() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.clock.jump_to(2.0)
    run.report(_slot(0), WorkerReport.HEARTBEAT)

    step = run.at(3.0)

    assert step.commands == ()
    assert run.deadline == 5.0


def test_heartbeats_read_together_count_before_deadlines() -> None:
    # The master was busy past both deadlines while the heartbeats waited.
    run = _Run(_spec(workers=2, heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.report(_slot(1), WorkerReport.READY)
    run.clock.jump_to(3.5)

    step = run.handle(
        WorkersReported(
            (
                WorkerReported(run.pids[_slot(0)], WorkerReport.HEARTBEAT),
                WorkerReported(run.pids[_slot(1)], WorkerReport.HEARTBEAT),
            )
        )
    )

    assert step.commands == ()
    assert run.deadline == 6.5


def test_heartbeats_read_together_still_stop_the_silent() -> None:
    run = _Run(_spec(workers=2, heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.report(_slot(1), WorkerReport.READY)
    run.clock.jump_to(3.5)

    step = run.handle(
        WorkersReported((WorkerReported(run.pids[_slot(0)], WorkerReport.HEARTBEAT),))
    )

    assert step.commands == (SignalWorker(_slot(1), 101, WorkerSignal.TERMINATE, StopReason.HUNG),)


def test_heartbeat_not_checked_before_ready() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()

    run.report(_slot(0), WorkerReport.HEARTBEAT)

    assert run.deadline is None


def test_heartbeat_does_not_change_status() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    revision = run.supervisor.revision

    run.report(_slot(0), WorkerReport.HEARTBEAT)

    assert run.supervisor.revision == revision


def test_hung_worker_killed_then_restarted() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.at(3.0)
    run.at(8.0)

    step = run.exit(_slot(0), -9)

    assert _exit_reports(step)[0].stop_reason is StopReason.HUNG
    assert SpawnWorker(_slot(0)) in step.commands


def test_hung_worker_restart_policy_never() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0, restart=RestartPolicy.NEVER), _spec(OTHER))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.at(3.0)

    run.exit(_slot(0), 0)

    assert run.state(_slot(0)) is SlotState.FINISHED


def test_heartbeat_timeout_racing_fast_stop() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.clock.jump_to(3.0)

    step = run.handle(StopRequested(StopMode.FAST))

    signals = [c for c in step.commands if isinstance(c, SignalWorker)]
    assert signals == [SignalWorker(_slot(0), 100, WorkerSignal.INTERRUPT, StopReason.INTERRUPT)]


def test_heartbeat_timeout_racing_shutdown() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.clock.jump_to(3.0)

    step = run.handle(StopRequested(StopMode.GRACEFUL))

    signals = [c for c in step.commands if isinstance(c, SignalWorker)]
    assert signals == [SignalWorker(_slot(0), 100, WorkerSignal.TERMINATE, StopReason.SHUTDOWN)]
    assert run.deadline == 8.0


def test_hung_stop_then_shutdown_keeps_deadline() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.at(3.0)
    run.clock.jump_to(4.0)

    step = run.handle(StopRequested(StopMode.GRACEFUL))
    killed = run.at(8.0)
    exited = run.exit(_slot(0), -9)

    assert [c for c in step.commands if isinstance(c, SignalWorker)] == []
    assert killed.commands == (KillWorker(_slot(0), 100, 5.0),)
    assert _exit_reports(exited)[0].stop_reason is StopReason.HUNG
    assert SpawnWorker(_slot(0)) not in exited.commands
    assert exited.commands[-1] == ExitManager(0)


def test_heartbeat_deadline_after_shutdown_ignored() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.clock.jump_to(1.0)
    run.handle(StopRequested(StopMode.GRACEFUL))

    step = run.at(3.0)

    assert step.commands == ()
    assert run.deadline == 6.0


def test_heartbeat_at_deadline_keeps_worker() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.clock.jump_to(3.0)

    step = run.report(_slot(0), WorkerReport.HEARTBEAT)

    assert step.commands == ()
    assert run.deadline == 6.0


def test_heartbeat_while_stopping_ignored() -> None:
    run = _Run(_spec(heartbeat_timeout=3.0))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.handle(StopRequested(StopMode.GRACEFUL))

    run.report(_slot(0), WorkerReport.HEARTBEAT)

    assert run.deadline == 5.0


# Recycling


def test_max_age_recycles_worker() -> None:
    run = _Run(_spec(max_age=100.0), jitter=0.5)
    run.start()
    recycle_at = 100.0 * (1.0 - MAX_AGE_JITTER * 0.5)

    step = run.at(recycle_at)

    assert step.commands == (
        SignalWorker(_slot(0), 100, WorkerSignal.TERMINATE, StopReason.MAX_AGE),
    )


def test_max_age_replacement_at_once() -> None:
    run = _Run(_spec(max_age=100.0))
    run.start()
    run.at(run.deadline or 0.0)

    step = run.exit(_slot(0), 0)

    assert _exit_reports(step)[0].respawn_delay == 0.0
    assert SpawnWorker(_slot(0)) in step.commands
    assert run.supervisor.status(run.clock.now()).restarts == 0


@pytest.mark.parametrize("seed", range(5))
def test_max_age_jitter_stays_in_range(seed: int) -> None:
    run = _Run(_spec(max_age=100.0), jitter=random.Random(seed).random())

    run.start()

    assert run.deadline is not None
    assert 100.0 * (1.0 - MAX_AGE_JITTER) < run.deadline <= 100.0


# Rolling reload


def _reload(run: _Run) -> Step:
    run.handle(ReloadRequested())
    return run.handle(ReloadHooksDone(cancelled=False))


def _rolling_run(workers: int = 2, **policies: Any) -> _Run:
    run = _Run(_spec(workers=workers, reload_policy=ReloadPolicy.ROLLING, **policies))
    run.start()
    for worker_id in range(workers):
        run.report(_slot(worker_id), WorkerReport.READY)
    return run


def _replacement_pid(run: _Run, slot: Slot) -> int:
    pid = run.supervisor.replacements()[slot].pid
    assert pid is not None
    return pid


def test_rolling_starts_one_replacement() -> None:
    run = _rolling_run()

    step = _reload(run)

    assert [c for c in step.commands if isinstance(c, SpawnWorker)] == [SpawnWorker(_slot(0))]
    assert run.state(_slot(0)) is SlotState.RUNNING
    assert set(run.supervisor.replacements()) == {_slot(0)}


def test_rolling_ready_replacement_retires_old() -> None:
    run = _rolling_run()
    _reload(run)
    new = _replacement_pid(run, _slot(0))

    step = run.handle(WorkerReported(new, WorkerReport.READY))

    assert step.commands == (
        SignalWorker(_slot(0), 100, WorkerSignal.TERMINATE, StopReason.RESTART),
    )


def test_rolling_handover_moves_to_next() -> None:
    run = _rolling_run()
    _reload(run)
    new = _replacement_pid(run, _slot(0))
    run.handle(WorkerReported(new, WorkerReport.READY))

    step = run.handle(WorkerExited(100, 0))

    assert step.commands[0] == ReportWorkerExit(_slot(0), 100, 0, StopReason.RESTART, 0.0)
    assert SpawnWorker(_slot(1)) in step.commands
    assert run.supervisor.slots()[_slot(0)].pid == new
    assert run.supervisor.slot_of_pid(new) == _slot(0)


def test_rolling_completes_with_reloaded() -> None:
    run = _rolling_run()
    _reload(run)
    for worker_id, old in ((0, 100), (1, 101)):
        new = _replacement_pid(run, _slot(worker_id))
        run.handle(WorkerReported(new, WorkerReport.READY))
        step = run.handle(WorkerExited(old, 0))

    assert step.commands[-1] == AnnounceReloaded()
    assert run.supervisor.replacements() == {}
    assert run.supervisor.status(run.clock.now()).last_reload is ReloadOutcome.DONE


def test_rolling_unready_replacement_fails_reload() -> None:
    run = _rolling_run(startup_timeout=2.0)
    _reload(run)
    new = _replacement_pid(run, _slot(0))

    stop = run.at(2.0)
    step = run.handle(WorkerExited(new, 0))

    assert stop.commands == (
        SignalWorker(_slot(0), new, WorkerSignal.TERMINATE, StopReason.STARTUP_TIMEOUT),
    )
    assert step.commands[-1] == AnnounceReloaded(failed=True)
    assert SpawnWorker(_slot(1)) not in step.commands
    assert run.supervisor.slots()[_slot(0)].pid == 100
    assert run.supervisor.status(run.clock.now()).last_reload is ReloadOutcome.FAILED


def test_rolling_default_ready_timeout() -> None:
    run = _rolling_run()

    _reload(run)

    assert run.deadline == ROLLING_READY_TIMEOUT


def test_rolling_old_crash_hands_over() -> None:
    run = _rolling_run()
    _reload(run)
    new = _replacement_pid(run, _slot(0))

    step = run.handle(WorkerExited(100, 1))

    assert step.commands == (ReportWorkerExit(_slot(0), 100, 1, None, 0.0),)
    assert run.supervisor.slots()[_slot(0)].pid == new
    assert run.supervisor.replacements() == {}


def test_rolling_shutdown_stops_both() -> None:
    run = _rolling_run()
    _reload(run)
    new = _replacement_pid(run, _slot(0))

    step = run.handle(StopRequested(StopMode.GRACEFUL))

    stopped = {c.pid for c in step.commands if isinstance(c, SignalWorker)}
    assert stopped == {100, 101, new}


def test_rolling_replacement_spawn_fails() -> None:
    run = _Run(_spec(workers=1, reload_policy=ReloadPolicy.ROLLING))
    run.start()
    run.report(_slot(0), WorkerReport.READY)
    run.handle(ReloadRequested())
    run.supervisor.handle(ReloadHooksDone(cancelled=False), 0.0)

    step = run.supervisor.handle(SpawnFailed(_slot(0), "fork failed"), 0.0)

    assert step.commands[-1] == AnnounceReloaded(failed=True)
    assert run.state(_slot(0)) is SlotState.RUNNING
