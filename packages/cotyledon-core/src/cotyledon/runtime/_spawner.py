"""Starting, signalling, killing and reaping worker processes.

With the fork start method the spawner forks the workers itself and reaps
them on SIGCHLD; with spawn and forkserver, ``multiprocessing`` starts
them (see ``_launch``). With forkserver the fork server is the parent and
reports each exit on the process's sentinel, which the master's selector
watches.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.context
import os
import selectors
import signal
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import final

from cotyledon.core import Slot
from cotyledon.core import WorkerSignal
from cotyledon.core import assert_never
from cotyledon.core import record
from cotyledon.runtime._launch import Child
from cotyledon.runtime._launch import fork_workers
from cotyledon.runtime._launch import start_in_context
from cotyledon.runtime._orphans import OrphanGroups
from cotyledon.runtime._signals import available_signals
from cotyledon.runtime._signals import blocked
from cotyledon.runtime._worker import WorkerBootstrap
from cotyledon.runtime._worker import WorkerRecipe

LOG = logging.getLogger(__name__)

_CAN_PEEK = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")

START_BLOCKED_SIGNALS = available_signals("SIGTERM", "SIGINT", "SIGHUP", "SIGALRM")
"""Blocked around the start of a spawn or forkserver worker. SIGALRM too:
the master catches it, and exec gives the new interpreter the default
action, which would end it."""


@record(frozen=False)
class WorkerProcess:
    """A live worker process of the master."""

    slot: Slot
    pid: int
    child: Child
    grace: float | None = None
    """Seconds that the processes left in its group get after SIGTERM, once
    it has ended (None: until the master exits)."""


def signal_number(request: WorkerSignal) -> int:
    """Return the signal that carries a request to a worker."""
    if request is WorkerSignal.TERMINATE:
        return signal.SIGTERM
    if request is WorkerSignal.INTERRUPT:
        return signal.SIGINT
    if request is WorkerSignal.RELOAD:
        return signal.SIGHUP
    assert_never(request)


@final
class Spawner:
    """The live worker processes of a master, by pid.

    ``recipe_for`` returns how to build the service of a slot. With forkserver,
    each worker's sentinel is registered in ``selector`` until it is reaped.
    """

    def __init__(
        self,
        context: multiprocessing.context.BaseContext,
        recipe_for: Callable[[Slot], WorkerRecipe],
        selector: selectors.BaseSelector,
        *,
        program_name: str,
        report_pipe: tuple[int, int],
        master_fds: Iterable[int] = (),
    ) -> None:
        self._context = context
        self._selector = selector
        self._recipe_for = recipe_for
        self._program_name = program_name
        # The read and write ends of the master's report pipe.
        self._report_pipe = report_pipe
        self._master_pid = os.getpid()
        # A forked worker has /dev/null at descriptor 0 before it closes the
        # master's descriptors (see _launch): one that the master had there,
        # when it started without a standard input, is gone already.
        self._master_fds = tuple(fd for fd in master_fds if fd != 0)
        self._processes: dict[int, WorkerProcess] = {}
        self.orphans = OrphanGroups()
        self._start_method = context.get_start_method()

    def __repr__(self) -> str:
        return f"<Spawner start_method={self._start_method} live={len(self._processes)}>"

    @property
    def start_method(self) -> str:
        return self._start_method

    def live(self) -> list[WorkerProcess]:
        return list(self._processes.values())

    def owns(self, pid: int) -> bool:
        """Tell whether ``pid`` is a live worker of this spawner."""
        return pid in self._processes

    def spawn(self, slots: Sequence[Slot]) -> list[WorkerProcess | Exception]:
        """Start the workers of ``slots``, in order, and return for each its
        process or the exception that kept it from starting."""
        if self._start_method == "fork":
            return self._fork(slots)
        return [self._start_in_context(slot) for slot in slots]

    def _fork(self, slots: Sequence[Slot]) -> list[WorkerProcess | Exception]:
        # A forked child has copies of every descriptor of the master; it
        # closes those that are the master's own business. The signals that
        # it must not handle with the master's handlers stay blocked until
        # it has its own: fork_workers blocks them.
        outcomes: dict[int, WorkerProcess | Exception] = {}
        bootstraps: list[WorkerBootstrap] = []
        forked: list[int] = []
        for index, slot in enumerate(slots):
            try:
                recipe = self._recipe_for(slot)
            except Exception as exc:
                outcomes[index] = exc
                continue
            bootstraps.append(
                WorkerBootstrap(
                    recipe,
                    self._master_pid,
                    self._program_name,
                    self._report_pipe[1],
                    self._master_fds,
                )
            )
            forked.append(index)
        for index, bootstrap, child in zip(
            forked, bootstraps, fork_workers(bootstraps), strict=True
        ):
            grace = bootstrap.recipe.graceful_shutdown_timeout
            outcomes[index] = (
                child if isinstance(child, Exception) else self._track(slots[index], child, grace)
            )
        return [outcomes[index] for index in range(len(slots))]

    def _start_in_context(self, slot: Slot) -> WorkerProcess | Exception:
        # The child execs a new interpreter (spawn) or is forked by the fork
        # server, and has the default handlers until it has imported and
        # unpickled its service: a stop or reload signal, or a stray SIGALRM,
        # would kill it then. It inherits this mask and unblocks the signals
        # once its handlers are in place. The fork server and the resource
        # tracker, which the first spawn starts, keep them blocked. The fork
        # server passes the mask to every worker it forks. SIGCHLD stays
        # unblocked, so that the fork server still reaps its children.
        # NOTE: a fork server that was running before this manager's first
        # spawn passes its own mask, and its workers are not covered.
        try:
            recipe = self._recipe_for(slot)
            bootstrap = WorkerBootstrap(
                recipe, self._master_pid, self._program_name, self._report_pipe[1]
            )
            with blocked(START_BLOCKED_SIGNALS):
                child = start_in_context(self._context, bootstrap, self._report_pipe)
        except Exception as exc:
            return exc
        return self._track(slot, child, recipe.graceful_shutdown_timeout)

    def _track(self, slot: Slot, child: Child, grace: float | None) -> WorkerProcess:
        """Register a started worker as live."""
        pid = child.pid
        # The worker moves to a group of its own; doing it here too closes
        # the window in which a kill of the group would miss it. It fails,
        # harmlessly, once the child has exec'd (spawn) or is not ours
        # (forkserver).
        if hasattr(os, "setpgid"):
            # Not contextlib.suppress, whose Python code would run at each
            # spawn: see ForkedChild.
            try:  # noqa: SIM105
                os.setpgid(pid, pid)
            except OSError:
                pass
        worker = WorkerProcess(slot, pid, child, grace)
        self._processes[pid] = worker
        if child.sentinel is not None:
            self._selector.register(child.sentinel, selectors.EVENT_READ, self)
        return worker

    def send(self, pid: int, request: WorkerSignal) -> None:
        """Send a request to one worker, never to its process group."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal_number(request))

    def kill(self, pid: int) -> None:
        """Kill a worker and its process group with SIGKILL."""
        if hasattr(os, "killpg"):
            # The group's id is the worker's pid once the worker has moved
            # into its own group; until it is reaped no other process can
            # own that id.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def reap(self) -> list[tuple[WorkerProcess, int]]:
        """Collect the workers that have exited, with their exit codes."""
        exited: list[tuple[WorkerProcess, int]] = []
        if self._start_method == "fork" and _CAN_PEEK and self._reap_peeked(exited):
            return exited
        for worker in list(self._processes.values()):
            self._reap_one(worker, exited)
        return exited

    def _reap_peeked(self, exited: list[tuple[WorkerProcess, int]]) -> bool:
        """Reap the exited children one by one, in the kernel's order.

        It costs a system call per exited worker rather than one per live
        worker. Return False when an exited child that is not a worker
        comes first (a process that a hook started, an adopted orphan): it
        is not ours to reap, so the caller looks at every worker instead.
        """
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            if info is None:
                return True
            worker = self._processes.get(info.si_pid)
            if worker is None or not self._reap_one(worker, exited):
                return False

    def _reap_one(self, worker: WorkerProcess, exited: list[tuple[WorkerProcess, int]]) -> bool:
        exit_code = worker.child.poll()
        if exit_code is None:
            return False
        del self._processes[worker.pid]
        if worker.child.sentinel is not None:
            self._selector.unregister(worker.child.sentinel)
        worker.child.close()
        self.orphans.end(worker.pid, worker.grace)
        exited.append((worker, exit_code))
        return True
