"""The master's event loop.

One selector waits on the signal wakeup pipe (and, with forkserver, on the
workers' sentinels) with a timeout equal to the supervisor's next deadline,
so an idle master does not wake up at all. Each wake-up is turned into core
events; the supervisor's commands are carried out in order, and the events
they cause (a worker spawned, a spawn failed) go back to the supervisor
before the loop waits again. No thread runs in the master, so forking a
worker is always safe.
"""

from __future__ import annotations

import collections
import gc
import logging
import multiprocessing.context
import select
import selectors
import signal
import threading
from collections.abc import Callable
from collections.abc import Sequence
from typing import Final
from typing import final

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
from cotyledon.core import ReloadRequested
from cotyledon.core import ReportServiceEnded
from cotyledon.core import ReportSpawnFailure
from cotyledon.core import ReportWorkerExit
from cotyledon.core import RunReloadHooks
from cotyledon.core import RunTerminateHooks
from cotyledon.core import ServiceState
from cotyledon.core import SignalWorker
from cotyledon.core import Slot
from cotyledon.core import SpawnFailed
from cotyledon.core import SpawnWorker
from cotyledon.core import Start
from cotyledon.core import StopMode
from cotyledon.core import StopReason
from cotyledon.core import StopRequested
from cotyledon.core import Supervisor
from cotyledon.core import TimerFired
from cotyledon.core import WorkerExited
from cotyledon.core import WorkerReport
from cotyledon.core import WorkerSignal
from cotyledon.core import WorkerSpawned
from cotyledon.core import WorkersReported
from cotyledon.core import assert_never
from cotyledon.core import evolve
from cotyledon.runtime._adopted import is_init
from cotyledon.runtime._adopted import reap_adopted
from cotyledon.runtime._clock import MonotonicClock
from cotyledon.runtime._control import ControlServer
from cotyledon.runtime._exits import describe_exit
from cotyledon.runtime._exits import signal_name
from cotyledon.runtime._hooks import Hooks
from cotyledon.runtime._hooks import run_hooks
from cotyledon.runtime._listeners import LifecycleListener
from cotyledon.runtime._listeners import ListenerSet
from cotyledon.runtime._listeners import WorkerEvent
from cotyledon.runtime._listeners import WorkerEventKind
from cotyledon.runtime._operator import OperatorSocket
from cotyledon.runtime._platform import log_platform_limits
from cotyledon.runtime._platform import raise_open_file_limit
from cotyledon.runtime._proctitle import set_master_title
from cotyledon.runtime._requests import RequestQueue
from cotyledon.runtime._signals import SignalWakeup
from cotyledon.runtime._signals import available_signals
from cotyledon.runtime._signals import install_master_signals
from cotyledon.runtime._spawner import Spawner
from cotyledon.runtime._spawner import WorkerProcess
from cotyledon.runtime._worker import WorkerRecipe

LOG = logging.getLogger(__name__)

_SIGHUP = getattr(signal, "SIGHUP", None)

_LISTENED_REPORTS: Final = (WorkerReport.READY, WorkerReport.RELOADED)
"""The reports that the listeners hear of, as worker events."""

_MAX_WAIT: Final = 86_400.0
"""The maximum wait for events, in seconds, whatever is due later."""


def _share_objects_with_workers() -> None:
    """Keep the garbage collector off the objects that workers inherit.

    A forked worker shares the master's memory until either process writes
    to a page. A collection writes to the header of every object it
    examines, so the first one in a worker would copy most of the pages it
    inherited. Frozen objects are never examined, in the workers or in the
    master, which also ends faster: its last collections skip them. The
    garbage that exists now is collected first, since frozen objects are
    never freed by the collector.
    """
    gc.collect()
    gc.freeze()


def _ignore_late_stop_signals(wakeup: SignalWakeup) -> None:
    """Have ``wakeup.close()`` ignore the stop signals instead of restoring
    their previous handlers, once the master has decided its exit status.

    The default handlers would let a SIGTERM sent during the master's exit
    (a storm, or a service manager that signals every process at once) end
    it by signal instead of with the status of the stop it carried out. The
    same holds for a stray SIGALRM, which the master drops while it runs.
    """
    for signum in available_signals("SIGTERM", "SIGINT", "SIGHUP", "SIGALRM"):
        if signum in wakeup.previous_handlers:
            wakeup.previous_handlers[signum] = signal.SIG_IGN


def _interrupted(wakeup: SignalWakeup, timeout: float) -> bool:
    """Wait up to ``timeout`` seconds for a signal; return whether SIGINT came."""
    select.select([wakeup.fd], [], [], timeout)
    return signal.SIGINT in wakeup.drain()


@final
class MasterLoop:
    """Run a supervisor against real processes until it commands the exit."""

    def __init__(
        self,
        *,
        supervisor: Supervisor,
        context: multiprocessing.context.BaseContext,
        hooks: Hooks,
        requests: RequestQueue,
        clock: MonotonicClock,
        recipe_for: Callable[[Slot], WorkerRecipe],
        program_name: str,
        signals: SignalWakeup | None = None,
        listeners: Sequence[LifecycleListener] = (),
        control_socket: str | None = None,
    ) -> None:
        self._supervisor = supervisor
        # Held while the supervisor changes, so that status() can read it
        # from any thread.
        self._state_lock = threading.Lock()
        self._control_socket = control_socket
        self._operator: OperatorSocket | None = None
        self._context = context
        self._hooks = hooks
        self._requests = requests
        self._clock = clock
        self._recipe_for = recipe_for
        self._program_name = program_name
        self._deadline: float | None = None
        self._status: int | None = None
        self._spawner: Spawner | None = None
        self._signals = signals
        self._listeners = ListenerSet(listeners)
        self._notified_revision = -1
        # A SIGINT came: nothing that the workers left is waited for.
        self._interrupted = False
        self._next_tick: float | None = None
        # Workers started ahead of their SpawnWorker commands: see
        # _start_workers.
        self._started: collections.deque[tuple[Slot, WorkerProcess | Exception]] = (
            collections.deque()
        )
        self._control: ControlServer | None = None

    def __repr__(self) -> str:
        return f"<MasterLoop {self._supervisor!r} deadline={self._deadline} status={self._status}>"

    def run(self) -> int:
        """Supervise until every worker has ended; return the exit status."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError(
                "ServiceManager.run() must be called from the main thread, "
                "because only the main thread can receive signals"
            )
        set_master_title(self._program_name)
        if self._context.get_start_method() == "fork":
            _share_objects_with_workers()
        wakeup = self._signals or install_master_signals()
        selector = selectors.DefaultSelector()
        control = ControlServer()
        self._control = control
        try:
            selector.register(wakeup.fd, selectors.EVENT_READ, None)
            selector.register(control.pipe_read, selectors.EVENT_READ, control)
            if self._control_socket is not None:
                self._operator = OperatorSocket(self._control_socket, selector)
            operator_fds = self._operator.fds() if self._operator is not None else ()
            self._spawner = Spawner(
                self._context,
                self._recipe_for,
                selector,
                program_name=self._program_name,
                report_pipe=(control.pipe_read, control.pipe_write),
                master_fds=(
                    *wakeup.fds,
                    selector.fileno(),
                    *operator_fds,
                ),
            )
            self._requests.attach(wakeup.wake)
            self._loop(wakeup, selector, self._spawner, control)
            if self._interrupted:
                self._spawner.orphans.kill_all()
            else:
                self._spawner.orphans.wait_until_gone(lambda seconds: _interrupted(wakeup, seconds))
        finally:
            if self._spawner is not None:
                self._spawner.orphans.kill_all()
            self._requests.detach()
            self._listeners.close()
            if self._operator is not None:
                self._operator.close()
            selector.close()
            self._control = None
            control.close()
            if self._status is not None:
                _ignore_late_stop_signals(wakeup)
            wakeup.close()
        assert self._status is not None
        return self._status

    def _loop(
        self,
        wakeup: SignalWakeup,
        selector: selectors.BaseSelector,
        spawner: Spawner,
        control: ControlServer,
    ) -> None:
        specs = self._supervisor.specs
        LOG.info(
            "Master starting %d worker(s) of %d service(s) (start method %s)",
            sum(spec.workers for spec in specs.values()),
            len(specs),
            spawner.start_method,
        )
        log_platform_limits()
        if spawner.start_method != "fork":
            raise_open_file_limit()
        # Signals and requests that came before run(): a stop then ends the
        # manager before any worker starts.
        self._process_wakeups(wakeup, spawner, control, ready=[])
        if self._status is None:
            self._handle(Start())
        while self._status is None:
            self._notify_status()
            self._schedule_tick()
            ready = selector.select(self._timeout())
            if self._operator is not None:
                self._operator.serve(ready, self.status)
            self._process_wakeups(wakeup, spawner, control, ready=[key.data for key, _ in ready])
            now = self._clock.now()
            if self._deadline is not None and now >= self._deadline:
                self._handle(TimerFired())
            if self._next_tick is not None and now >= self._next_tick:
                self._tick()
            spawner.orphans.kill_due()

    def _timeout(self) -> float | None:
        now = self._clock.now()
        waits = [max(0.0, t - now) for t in (self._deadline, self._next_tick) if t is not None]
        if self._spawner is not None and (orphans := self._spawner.orphans.wait()) is not None:
            waits.append(orphans)
        if not waits:
            return None
        # epoll takes at most 2**31 - 1 ms (about 24.8 days). A deadline
        # further away than the cap costs one early wakeup a day.
        return min(_MAX_WAIT, *waits)

    def _schedule_tick(self) -> None:
        # Listeners ask again before every wait, so that one with nothing
        # due (no watchdog, no pending message) lets the master sleep.
        interval = self._listeners.liveness_interval() if self._listeners else None
        if interval is None:
            self._next_tick = None
            return
        soonest = self._clock.now() + interval
        if self._next_tick is None or soonest < self._next_tick:
            self._next_tick = soonest

    def _tick(self) -> None:
        self._next_tick = None
        self._listeners.liveness_tick(self.status())

    def status(self) -> ManagerStatus:
        """Return a snapshot of the manager and its workers as of now.

        Safe to call from any thread, during the loop and after it. The
        snapshot is built on demand: a status that is never read costs the
        loop nothing.
        """
        with self._state_lock:
            return self._supervisor.status(self._clock.now())

    def _notify_status(self) -> None:
        if not self._listeners:
            return
        revision = self._supervisor.revision
        if revision == self._notified_revision:
            return
        self._notified_revision = revision
        self._listeners.status_changed(self.status())

    def _process_wakeups(
        self,
        wakeup: SignalWakeup,
        spawner: Spawner,
        control: ControlServer,
        *,
        ready: list[object],
    ) -> None:
        # Reports first, read whether or not the selector saw them: the
        # heartbeats among them must count before any other event of this
        # wakeup makes the core check its deadlines.
        reported = self._take_reports(control)
        if reported is not None:
            self._handle(reported)
        reap = spawner in ready
        reloads = 0
        for signum in wakeup.drain():
            if signum == signal.SIGCHLD:
                reap = True
            elif signum == _SIGHUP:
                # One reload covers every SIGHUP read in this wakeup,
                # because no hook has run for any of them yet.
                reloads += 1
                if reloads == 1:
                    self._on_signal(signum)
            elif signum:
                self._on_signal(signum)
        if reloads > 1:
            LOG.info(
                "Caught SIGHUP %d more time(s) before the reload started: one reload covers them",
                reloads - 1,
            )
        for event in self._requests.drain():
            self._handle(event)
        if reap:
            self._reap_workers(spawner)
            if is_init():
                # PID 1 of a container: orphans are ours to reap too.
                orphans = reap_adopted(
                    spawner.owns,
                    lambda: self._reap_workers(spawner),
                )
                if orphans:
                    LOG.debug("Reaped %d adopted orphan processes", orphans)

    def _reap_workers(self, spawner: Spawner) -> None:
        for worker, exit_code in spawner.reap():
            self._handle(WorkerExited(worker.pid, exit_code))

    def _queue_reports(self, pending: collections.deque[Event], *, first: bool) -> None:
        """Read the reports waiting, and queue them first or last in ``pending``."""
        if self._control is None:
            return
        reported = self._take_reports(self._control)
        if reported is None:
            return
        if first:
            pending.appendleft(reported)
        else:
            pending.append(reported)

    def _take_reports(self, control: ControlServer) -> WorkersReported | None:
        """Read the reports waiting on the control channel; return them as
        one event, or None if there is none.

        The listeners hear of each worker's report first: it may complete
        a manager event.
        """
        reports = control.receive()
        if not reports:
            return None
        for index, reported in enumerate(reports):
            report = reported.report
            if reported.received_at is not None:
                reports[index] = evolve(
                    reported, received_at=self._clock.of_monotonic(reported.received_at)
                )
            if not self._listeners or report not in _LISTENED_REPORTS:
                continue
            slot = self._supervisor.slot_of_pid(reported.pid)
            if slot is not None:
                kind = (
                    WorkerEventKind.READY
                    if report is WorkerReport.READY
                    else WorkerEventKind.RELOADED
                )
                self._listeners.worker_event(self._worker_event(kind, slot, reported.pid))
        return WorkersReported(tuple(reports))

    def _on_signal(self, signum: int) -> None:
        phase = self._supervisor.phase
        name = signal_name(signum)
        if signum == signal.SIGTERM:
            if phase is ManagerPhase.RUNNING:
                LOG.info("Caught %s: stopping gracefully", name)
            self._handle(StopRequested(StopMode.GRACEFUL))
        elif signum == signal.SIGINT:
            self._interrupted = True
            if phase is not ManagerPhase.INTERRUPTING:
                LOG.info("Caught %s: stopping every worker now", name)
            self._handle(StopRequested(StopMode.FAST))
        elif signum == _SIGHUP:
            if phase is ManagerPhase.RUNNING:
                LOG.info("Caught %s: reloading", name)
            else:
                LOG.info("Caught %s while %s: no reload", name, phase.value)
            self._handle(ReloadRequested())

    def _handle(self, event: Event) -> None:
        pending: collections.deque[Event] = collections.deque([event])
        if (
            self._deadline is not None
            and self._clock.now() >= self._deadline
            and not isinstance(event, WorkersReported)
        ):
            # The core acts on its passed deadlines after each event. The
            # master may have been busy, stopped or short of CPU since it
            # last read the reports: a heartbeat that waits unread must not
            # count as missing, so the reports go first. Only before the
            # first event: a report from a worker forked in this call, read
            # before its WorkerSpawned event, would name a pid unknown yet.
            self._queue_reports(pending, first=True)
        while pending:
            with self._state_lock:
                step = self._supervisor.handle(pending.popleft(), self._clock.now())
            self._deadline = step.deadline
            commands = step.commands
            for index, command in enumerate(commands):
                if isinstance(command, SignalWorker) and (
                    index == 0 or not isinstance(commands[index - 1], SignalWorker)
                ):
                    self._send_signals(commands, index)
                if isinstance(command, SpawnWorker) and (
                    index == 0 or not isinstance(commands[index - 1], SpawnWorker)
                ):
                    self._start_workers(commands, index)
                follow_up = self._execute(command)
                # What hooks asked for (reconfigure, shutdown, a new timeout)
                # applies before the outcome of the command that ran them,
                # and so do the reports that came while they ran.
                pending.extend(self._requests.drain())
                if isinstance(command, (RunReloadHooks, RunTerminateHooks)):
                    self._queue_reports(pending, first=False)
                if follow_up is not None:
                    pending.append(follow_up)

    def _send_signals(self, commands: Sequence[Command], start: int) -> None:
        """Send the signals of the run of SignalWorker commands at ``start``,
        before they are logged one by one.

        Each signal wakes a worker, which may take the CPU from the master
        at once: with the logging between the sends, the last of 64
        workers heard of a stop or a reload many milliseconds after the
        first.
        """
        assert self._spawner is not None
        for command in commands[start:]:
            if not isinstance(command, SignalWorker):
                return
            self._spawner.send(command.pid, command.signal)

    def _start_workers(self, commands: Sequence[Command], start: int) -> None:
        """Start the workers of the run of SpawnWorker commands at ``start``,
        before any of them is logged or reported.

        With the fork start method, the master copies each page that it
        writes between two forks, once per fork. So the forks come first,
        back to back (see fork_workers), and the bookkeeping of each worker
        follows as its command runs.
        """
        assert self._spawner is not None
        slots = []
        for command in commands[start:]:
            if not isinstance(command, SpawnWorker):
                break
            slots.append(command.slot)
        self._started.extend(zip(slots, self._spawner.spawn(slots), strict=True))

    def _execute(self, command: Command) -> Event | None:
        assert self._spawner is not None
        if isinstance(command, SpawnWorker):
            return self._spawn(command.slot)
        if isinstance(command, SignalWorker):
            self._log_signal(command)  # sent by _send_signals
        elif isinstance(command, KillWorker):
            LOG.warning(
                "Worker %s pid %d did not stop within %.1f s; killing it and its "
                "process group with SIGKILL",
                self._worker_name(command.slot),
                command.pid,
                command.waited,
            )
            self._spawner.kill(command.pid)
        elif isinstance(command, RunTerminateHooks):
            run_hooks("on_terminate", self._hooks.on_terminate)
        elif isinstance(command, RunReloadHooks):
            cancelled = run_hooks("on_reload", self._hooks.on_reload)
            return ReloadHooksDone(cancelled)
        elif isinstance(command, ReportWorkerExit):
            self._report_exit(command)
        elif isinstance(command, ReportSpawnFailure):
            retry = (
                "no retry"
                if command.retry_delay is None
                else f"retrying in {command.retry_delay:.2f} s"
            )
            LOG.error(
                "Failed to start worker %s: %s; %s",
                self._worker_name(command.slot),
                command.reason,
                retry,
            )
        elif isinstance(command, ReportServiceEnded):
            self._report_service_ended(command)
        elif isinstance(
            command, (AnnounceReady, AnnounceReloading, AnnounceReloaded, AnnounceStopping)
        ):
            self._announce(command)
        elif isinstance(command, ExitManager):
            self._exit(command)
        else:
            assert_never(command)
        return None

    def _report_exit(self, command: ReportWorkerExit) -> None:
        self._log_exit(command)
        if self._listeners:
            reason = command.stop_reason.value if command.stop_reason else None
            event = self._worker_event(
                WorkerEventKind.EXITED, command.slot, command.pid, command.exit_code, reason
            )
            self._listeners.worker_event(event)
        if command.runs_dead_worker_hooks:
            # NOTE: the core returns the restart of the slot in the same step
            # as this exit, so a shutdown() or reconfigure() from one of these
            # hooks applies after the replacement is forked, and stops it.
            run_hooks(
                "on_dead_worker",
                self._hooks.on_dead_worker,
                command.slot.service_id,
                command.slot.worker_id,
                command.exit_code,
            )

    def _exit(self, command: ExitManager) -> None:
        LOG.info("All workers have ended; master exiting with status %d", command.status)
        self._status = command.status

    def _announce(
        self, command: AnnounceReady | AnnounceReloading | AnnounceReloaded | AnnounceStopping
    ) -> None:
        # The snapshot is built only for a listener or a log line that
        # shows it.
        if isinstance(command, AnnounceReloaded):
            self._announce_reloaded(command)
            return
        if isinstance(command, AnnounceReady) and LOG.isEnabledFor(logging.INFO):
            LOG.info("Manager ready: %s", self.status().summary())
        if not self._listeners:
            return
        status = self.status()
        if isinstance(command, AnnounceReady):
            self._listeners.ready(status)
        elif isinstance(command, AnnounceReloading):
            self._listeners.reloading(status)
        elif isinstance(command, AnnounceStopping):
            self._listeners.stopping(status)
        else:
            assert_never(command)

    def _announce_reloaded(self, command: AnnounceReloaded) -> None:
        if command.cancelled:
            LOG.warning("Reload cancelled by a hook; the workers keep running as they were")
        elif command.failed:
            LOG.error(
                "Reload failed: a rolling replacement was not ready in time; "
                "the workers not yet replaced keep running: %s",
                self.status().summary(),
            )
        elif LOG.isEnabledFor(logging.INFO):
            LOG.info("Reload complete: %s", self.status().summary())
        if self._listeners:
            self._listeners.reloaded(self.status())

    def _report_service_ended(self, command: ReportServiceEnded) -> None:
        spec = self._supervisor.spec(command.service_id)
        name = spec.name if spec is not None else str(command.service_id)
        if command.state is ServiceState.GIVEN_UP:
            limit = spec.max_restarts if spec is not None else None
            within = f" ({limit[0]} restarts within {limit[1]} s)" if limit is not None else ""
            action = spec.on_give_up.value if spec is not None else "stop"
            LOG.error(
                "Service %s restarted more often than allowed%s: giving it up (%s)",
                name,
                within,
                action,
            )
            self._listeners.give_up(self.status())
        else:
            LOG.info("Service %s finished: every worker has ended for good", name)

    def _spawn(self, slot: Slot) -> Event:
        started, worker = self._started.popleft()
        assert started == slot, (started, slot)
        if isinstance(worker, Exception):
            LOG.debug("Spawn of worker %s failed", self._worker_name(slot), exc_info=worker)
            return SpawnFailed(slot, f"{type(worker).__name__}: {worker}")
        if LOG.isEnabledFor(logging.INFO):
            LOG.info("Started worker %s with pid %d", self._worker_name(slot), worker.pid)
        if self._listeners:
            self._listeners.worker_event(
                self._worker_event(WorkerEventKind.STARTED, slot, worker.pid)
            )
        return WorkerSpawned(slot, worker.pid)

    def _worker_event(
        self,
        kind: WorkerEventKind,
        slot: Slot,
        pid: int,
        exit_code: int | None = None,
        stop_reason: str | None = None,
    ) -> WorkerEvent:
        spec = self._supervisor.spec(slot.service_id)
        name = spec.name if spec is not None else str(slot.service_id)
        return WorkerEvent(kind, slot.service_id, name, slot.worker_id, pid, exit_code, stop_reason)

    def _log_signal(self, command: SignalWorker) -> None:
        warned = command.reason in (StopReason.STARTUP_TIMEOUT, StopReason.HUNG)
        if not LOG.isEnabledFor(logging.WARNING if warned else logging.INFO):
            return  # otherwise a reload formats one name per worker for nothing
        name = self._worker_name(command.slot)
        if command.signal is WorkerSignal.RELOAD:
            LOG.info("Reloading worker %s pid %d", name, command.pid)
        elif command.reason is StopReason.STARTUP_TIMEOUT:
            spec = self._supervisor.spec(command.slot.service_id)
            LOG.warning(
                "Worker %s pid %d was not ready within %s s; stopping it",
                name,
                command.pid,
                spec.startup_timeout if spec is not None else "its startup timeout",
            )
        elif command.reason is StopReason.HUNG:
            spec = self._supervisor.spec(command.slot.service_id)
            LOG.warning(
                "Worker %s pid %d is hung: no heartbeat for %s s; stopping it",
                name,
                command.pid,
                spec.heartbeat_timeout if spec is not None else "its heartbeat timeout",
            )
        else:
            reason = command.reason.value if command.reason is not None else "request"
            LOG.info("Stopping worker %s pid %d (%s)", name, command.pid, reason)

    def _log_exit(self, command: ReportWorkerExit) -> None:
        unexpected = command.respawn_delay is not None and command.stop_reason is None
        if not LOG.isEnabledFor(logging.WARNING if unexpected else logging.INFO):
            return
        name = self._worker_name(command.slot)
        how = describe_exit(command.exit_code)
        if command.respawn_delay is None:
            LOG.info("Worker %s pid %d %s", name, command.pid, how)
        elif command.stop_reason is not None:
            LOG.info(
                "Worker %s pid %d %s (%s); starting its replacement",
                name,
                command.pid,
                how,
                command.stop_reason.value,
            )
        else:
            failures = self._supervisor.failures(command.slot)
            when = (
                "restarting it now"
                if command.respawn_delay == 0
                else f"restarting it in {command.respawn_delay:.2f} s "
                f"({failures} early exits in a row)"
            )
            LOG.warning("Worker %s pid %d %s unexpectedly; %s", name, command.pid, how, when)

    def _worker_name(self, slot: Slot) -> str:
        spec = self._supervisor.spec(slot.service_id)
        name = spec.name if spec is not None else str(slot.service_id)
        return f"{name}({slot.worker_id})"
