"""Starting, signalling, killing and reaping worker processes.

Workers are ``multiprocessing`` processes of the manager's context (fork,
spawn or forkserver). The master reaps them through ``Process.exitcode``,
which polls with ``waitpid(WNOHANG)`` for fork and spawn; with forkserver
the fork server is the parent and reports each exit on the process's
sentinel, which the master's selector watches.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.context
import multiprocessing.process
import os
import selectors
import signal
from collections.abc import Callable
from collections.abc import Iterable
from typing import final

import attrs

from cotyledon.core import Slot
from cotyledon.core import WorkerSignal
from cotyledon.core import assert_never
from cotyledon.runtime._signals import blocked
from cotyledon.runtime._worker import SPAWN_BLOCKED_SIGNALS
from cotyledon.runtime._worker import WorkerBootstrap
from cotyledon.runtime._worker import WorkerRecipe
from cotyledon.runtime._worker import worker_main

LOG = logging.getLogger(__name__)


@attrs.define
class WorkerProcess:
    """A live worker process of the master."""

    slot: Slot
    pid: int
    process: multiprocessing.process.BaseProcess


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
        control_address: str,
        master_fds: Iterable[int] = (),
    ) -> None:
        self._context = context
        self._selector = selector
        self._recipe_for = recipe_for
        self._program_name = program_name
        self._control_address = control_address
        self._master_pid = os.getpid()
        self._master_fds = tuple(master_fds)
        self._processes: dict[int, WorkerProcess] = {}
        self._start_method = context.get_start_method()

    def __repr__(self) -> str:
        return f"<Spawner start_method={self._start_method} live={len(self._processes)}>"

    @property
    def start_method(self) -> str:
        return self._start_method

    @property
    def watches_sentinels(self) -> bool:
        """True when exits arrive on sentinels rather than with SIGCHLD."""
        return self._start_method == "forkserver"

    def live(self) -> list[WorkerProcess]:
        return list(self._processes.values())

    def spawn(self, slot: Slot) -> WorkerProcess:
        """Start the worker of a slot; raise OSError when it cannot start."""
        inherited: tuple[int, ...] = ()
        if self._start_method == "fork":
            # A forked child has copies of every descriptor of the master;
            # it closes those that are the master's own business.
            sentinels = tuple(w.process.sentinel for w in self._processes.values())
            inherited = self._master_fds + sentinels
        recipe = self._recipe_for(slot)
        bootstrap = WorkerBootstrap(
            recipe, self._master_pid, self._program_name, self._control_address, inherited
        )
        process = self._context.Process(  # type: ignore[attr-defined]
            target=worker_main,
            args=(bootstrap,),
            name=f"{recipe.service_name}-{slot.worker_id}",
        )
        if self._start_method == "fork":
            with blocked(SPAWN_BLOCKED_SIGNALS):
                process.start()
        else:
            # The child execs a new interpreter (spawn) or is forked by the
            # fork server: it never runs the master's handlers. Blocking here
            # would also leave signals blocked in the fork server, which the
            # first spawn starts, and it would never reap its children.
            process.start()
        pid = process.pid
        assert pid is not None
        # multiprocessing polls every process in this set at each start,
        # which makes starting N workers cost O(N**2) waitpid calls; the
        # spawner reaps its own workers. NOTE: a private name of
        # multiprocessing (3.10 to 3.13); without it the spawner still works.
        children = getattr(multiprocessing.process, "_children", None)
        if isinstance(children, set):
            children.discard(process)
        # The worker moves to a group of its own; doing it here too closes
        # the window in which a kill of the group would miss it. It fails,
        # harmlessly, once the child has exec'd (spawn) or is not ours
        # (forkserver).
        if hasattr(os, "setpgid"):
            with contextlib.suppress(OSError):
                os.setpgid(pid, pid)
        worker = WorkerProcess(slot, pid, process)
        self._processes[pid] = worker
        if self.watches_sentinels:
            self._selector.register(process.sentinel, selectors.EVENT_READ, self)
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
        exited = []
        for worker in list(self._processes.values()):
            exit_code = worker.process.exitcode
            if exit_code is None:
                continue
            del self._processes[worker.pid]
            if self.watches_sentinels:
                self._selector.unregister(worker.process.sentinel)
            worker.process.close()
            self._kill_orphans(worker.pid)
            exited.append((worker, exit_code))
        return exited

    def _kill_orphans(self, pid: int) -> None:
        """Kill what is left of the process group of a worker that has ended.

        The worker's children stay in its group when it dies (killed, or
        after a fork and exit); with their worker gone, nothing would ever
        stop them, and they would outlive the manager. Linux does not hand
        out the number of a group that still has members, so the group is
        the dead worker's own or is gone.
        """
        if hasattr(os, "killpg"):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
