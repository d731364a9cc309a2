"""The two ways a worker process comes to life, and the handle on each.

With the ``fork`` start method, the master calls ``os.fork()`` itself.
``multiprocessing`` adds a pipe, a finalizer and a ``Process`` object in
the master for each child, and each new child had to close the pipes of
all its siblings, so that starting N workers cost O(N**2). A worker needs
none of it. The child still gets the after-fork treatment that
``multiprocessing`` gives its own children, so that queues and locks of
``multiprocessing`` made in the master before ``run()`` work in workers.

With ``spawn`` and ``forkserver``, a new interpreter or the fork server
builds the worker, and ``multiprocessing`` does it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing.context
import multiprocessing.process
import multiprocessing.reduction
import os
import sys
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Final
from typing import NoReturn
from typing import Protocol
from typing import TextIO
from typing import final

from cotyledon.core import evolve
from cotyledon.runtime._process_identity import ForkedIdentity
from cotyledon.runtime._signals import block
from cotyledon.runtime._signals import restore
from cotyledon.runtime._worker import SPAWN_BLOCKED_SIGNALS
from cotyledon.runtime._worker import WorkerBootstrap
from cotyledon.runtime._worker import worker_main

LOG = logging.getLogger(__name__)

LOST_EXIT_CODE: Final = 255
"""The exit code reported for a worker whose status another waiter took."""


class Child(Protocol):
    """A started worker process, as the spawner handles it."""

    @property
    def pid(self) -> int: ...

    @property
    def sentinel(self) -> int | None:
        """A descriptor that becomes readable when the process ends, or None
        when the end comes with SIGCHLD."""

    def poll(self) -> int | None:
        """Reap the process if it has ended and return its exit code, or None
        while it runs. The code follows ``multiprocessing``: minus the signal
        number when a signal ended the process."""

    def close(self) -> None:
        """Release the handle's resources once the process is reaped."""


@final
class ForkedChild:
    """A worker that the master forked itself, and reaps by pid."""

    # Plain attributes rather than properties, which the master would call at
    # each spawn. Each Python function that the master runs writes to the
    # pages of its objects (reference counts), and the workers forked before
    # then no longer share those pages with it.
    __slots__ = ("pid",)

    sentinel: Final = None
    """None: the end of a forked worker comes with SIGCHLD."""

    def __init__(self, pid: int) -> None:
        self.pid: Final = pid

    def __repr__(self) -> str:
        return f"<ForkedChild pid={self.pid}>"

    def poll(self) -> int | None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, -1
        if pid == 0:
            return None
        if status == -1:
            LOG.error(
                "The exit status of worker process %d was taken by another waiter "
                "(os.wait() in a hook?); reporting exit code %d",
                self.pid,
                LOST_EXIT_CODE,
            )
            return LOST_EXIT_CODE
        return os.waitstatus_to_exitcode(status)

    def close(self) -> None:
        pass


def fork_workers(bootstraps: Sequence[WorkerBootstrap]) -> list[ForkedChild | Exception]:
    """Fork one worker for each of ``bootstraps``, in order, and return for
    each its handle or the exception that its fork raised.

    The forks follow one another with as little as possible in between.
    Each fork shares the master's memory with the new child, and each page
    that the master writes afterwards is copied: the master's own
    bookkeeping of the new workers (handles, events, logs) waits until the
    last fork, so that it copies its pages once rather than once per
    worker.

    The children start with ``SPAWN_BLOCKED_SIGNALS`` blocked, so that
    none can run one of the master's handlers before it has installed its
    own. The caller's mask is restored in the master after the last fork.
    """
    # Decided and opened here, so that the children spend no time on them.
    kit = _kit
    if kit is None or kit.owner_pid != os.getpid():
        kit = _new_fork_kit()
    reset_multiprocessing = _multiprocessing_has_state()
    # Filled in place: growing a list between forks would write to it.
    outcomes: list[int | Exception] = [0] * len(bootstraps)
    previous = block(SPAWN_BLOCKED_SIGNALS)
    try:
        for index, bootstrap in enumerate(bootstraps):
            try:
                pid = os.fork()
            except Exception as exc:
                # OSError, mostly. Either way the workers forked before it
                # must stay tracked, so the exception fails this slot only.
                outcomes[index] = exc
                continue
            if pid == 0:
                _run_forked_child(bootstrap, reset_multiprocessing, kit)
            outcomes[index] = pid
    finally:
        restore(previous)
    return [
        outcome if isinstance(outcome, Exception) else ForkedChild(outcome) for outcome in outcomes
    ]


def _run_forked_child(
    bootstrap: WorkerBootstrap, reset_multiprocessing: bool, kit: _ForkKit
) -> NoReturn:
    """Run a newly forked worker to its end; nothing returns from here into
    the master's code."""
    try:
        _after_fork_in_child(reset_multiprocessing, kit, process_name(bootstrap))
        worker_main(bootstrap, kit.identity.master_pidfd)
    except BaseException:
        with contextlib.suppress(BaseException):
            LOG.exception("Worker process %d failed before its loop started", os.getpid())
    finally:
        os._exit(1)


def _multiprocessing_has_state() -> bool:
    """Tell whether a forked child has any ``multiprocessing`` state to reset.

    Most masters have none: then the child skips the reset, which would
    otherwise touch (and so copy) pages of the master's memory for nothing.
    """
    # NOTE: these are private names of multiprocessing (3.10 to 3.13). A
    # missing one counts as state, so that the child tries its reset.
    children = getattr(multiprocessing.process, "_children", None)
    if children is None or len(children) > 0:
        return True
    # Nothing can be registered with multiprocessing.util before something
    # imports it, and this module does not: with its imports, it would make
    # the master bigger and each fork slower.
    util = sys.modules.get("multiprocessing.util")
    if util is None:
        return False
    finalizers = getattr(util, "_finalizer_registry", None)
    # The dict inside the WeakValueDictionary: its own len() is Python code.
    # Entries that wait for removal still count, which errs on the safe side.
    after_forkers = getattr(getattr(util, "_afterfork_registry", None), "data", None)
    return (
        finalizers is None or len(finalizers) > 0 or after_forkers is None or len(after_forkers) > 0
    )


@final
class _ForkKit:
    """The descriptors, file and objects that a master makes once for all the
    workers that it forks.

    A forked child inherits these and only puts them in place: building
    them in each child would run code that copies pages of the master's
    memory, dozens per worker. Each part is None when the master could not
    open it, and each child then does that part itself.
    """

    __slots__ = ("identity", "owner_pid", "stdin_fd", "stdin_file")

    def __init__(self) -> None:
        self.owner_pid = os.getpid()
        self.stdin_fd: int | None = None
        self.stdin_file: TextIO | None = None
        with contextlib.suppress(OSError):
            # Close-on-exec: the programs that the master runs keep their
            # own standard input.
            self.stdin_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            self.stdin_file = _text_file_on_fd_0()
        # After /dev/null, which takes descriptor 0 where the master has none.
        self.identity = ForkedIdentity()

    def __repr__(self) -> str:
        return f"<_ForkKit owner_pid={self.owner_pid} stdin_fd={self.stdin_fd}>"

    def stdin_in_child(self) -> None:
        """Make /dev/null the standard input of the calling forked child."""
        fd = self.stdin_fd
        if fd is None:
            _stdin_from_devnull()
            return
        try:
            if fd == 0:
                # The master had no descriptor 0 when it opened /dev/null,
                # which is there already but closed on exec: the programs
                # that the worker runs must get it too.
                os.set_inheritable(0, True)
            else:
                os.dup2(fd, 0)
                os.close(fd)
        except OSError:
            # Code of the master closed the descriptor: open /dev/null again.
            _stdin_from_devnull()
            return
        if self.stdin_file is not None:
            sys.stdin = self.stdin_file
        else:
            sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115


def _text_file_on_fd_0() -> TextIO | None:
    """Return the text file that a worker's ``sys.stdin`` becomes once
    /dev/null is its descriptor 0, or None when each worker opens its own.

    A file's ``seekable()`` and ``tell()`` follow the descriptor that it was
    opened on: /dev/null is seekable, a terminal or a pipe is not. Over
    those, each worker opens its own file once /dev/null is in place.
    """
    try:
        file = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    except OSError:
        return None  # no descriptor 0 in the master
    return file if file.seekable() else None


_kit: _ForkKit | None = None
"""The kit of this process, kept for its whole life and shared by the
workers of every manager that it runs."""


def _new_fork_kit() -> _ForkKit:
    global _kit  # noqa: PLW0603 - one per process, see above
    _kit = _ForkKit()
    return _kit


def process_name(bootstrap: WorkerBootstrap) -> str:
    """Return the name of a worker's ``multiprocessing`` process: ``api-3``."""
    recipe = bootstrap.recipe
    return f"{recipe.service_name}-{recipe.worker_id}"


def _after_fork_in_child(reset_multiprocessing: bool, kit: _ForkKit, name: str) -> None:
    """Do in a forked worker what ``multiprocessing`` does in its children.

    The after-fork callbacks reset the ``multiprocessing`` queues, locks
    and connections made in the master. Its finalizers and children
    belong to the master. The worker becomes the current process, named
    ``name``, and the master its parent process. The master decides
    whether there is anything to reset. Standard input goes to /dev/null,
    so that no worker reads what the terminal sends to the master.
    """
    if reset_multiprocessing:
        _reset_multiprocessing()
    kit.identity.adopt(name)
    kit.stdin_in_child()


def _reset_multiprocessing() -> None:
    # NOTE: these are private names of multiprocessing (3.10 to 3.13). Each
    # step is skipped when its name is missing.
    util = sys.modules.get("multiprocessing.util")
    finalizers = getattr(util, "_finalizer_registry", None)
    if isinstance(finalizers, dict):
        finalizers.clear()
    run_after_forkers = getattr(util, "_run_after_forkers", None)
    if callable(run_after_forkers):
        run_after_forkers()
    children = getattr(multiprocessing.process, "_children", None)
    if isinstance(children, set):
        children.clear()


def _stdin_from_devnull() -> None:
    with contextlib.suppress(OSError, ValueError, AttributeError):
        if sys.stdin is not None:
            sys.stdin.close()
    try:
        fd = os.open(os.devnull, os.O_RDONLY)
    except OSError:
        return
    if fd != 0:
        os.dup2(fd, 0)
        os.close(fd)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115


@final
class ContextChild:
    """A worker that a ``multiprocessing`` context started."""

    __slots__ = ("_pid", "_process")

    def __init__(self, process: multiprocessing.process.BaseProcess) -> None:
        assert process.pid is not None
        self._process = process
        self._pid = process.pid

    def __repr__(self) -> str:
        return f"<ContextChild pid={self._pid}>"

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def sentinel(self) -> int:
        return self._process.sentinel

    def poll(self) -> int | None:
        return self._process.exitcode

    def close(self) -> None:
        self._process.close()


def start_in_context(
    context: multiprocessing.context.BaseContext,
    bootstrap: WorkerBootstrap,
    report_pipe: tuple[int, int],
) -> ContextChild:
    """Start a worker with a ``multiprocessing`` context; raise OSError
    when it cannot start.

    The worker gets copies of both ends of ``report_pipe``, the master's
    report pipe (read end first), and writes its reports there.
    """
    args = (bootstrap, _PassedFd(report_pipe[0]), _PassedFd(report_pipe[1]))
    process = context.Process(  # type: ignore[attr-defined]
        target=_context_worker_main, args=args, name=process_name(bootstrap)
    )
    process.start()
    # multiprocessing polls every process in this set at each start, which
    # makes starting N workers cost O(N**2) waitpid calls. The spawner reaps
    # its own workers. NOTE: this is a private name of multiprocessing (3.10
    # to 3.13), and without it the spawner still works.
    children = getattr(multiprocessing.process, "_children", None)
    if isinstance(children, set):
        children.discard(process)
    return ContextChild(process)


def _context_worker_main(bootstrap: WorkerBootstrap, pipe_read: int, pipe_write: int) -> NoReturn:
    """Run a worker that a context started, with its copies of the report pipe.

    The worker never reads the pipe. It keeps the read end open, as a
    forked worker does, so that a write after the master's death never
    raises SIGPIPE.
    """
    del pipe_read  # stays open until the worker exits
    worker_main(evolve(bootstrap, report_fd=pipe_write))


@final
class _PassedFd:
    """A descriptor of the master that a worker started by a context gets a
    copy of; an ``int`` again once the worker has unpickled it.

    ``multiprocessing`` pickles the arguments of a process while it starts
    it. ``DupFd`` then has the context pass the descriptor to the child:
    by number to a spawned one, over its socket to the fork server for a
    forkserver one.
    """

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __repr__(self) -> str:
        return f"<_PassedFd fd={self.fd}>"

    def __reduce__(self) -> tuple[Callable[[Any], int], tuple[Any]]:
        if multiprocessing.context.get_spawning_popen() is None:
            # Elsewhere DupFd would start a thread that serves the descriptor.
            raise TypeError(f"descriptor {self.fd} is passed only while a context starts a worker")
        return _detach_passed_fd, (multiprocessing.reduction.DupFd(self.fd),)


def _detach_passed_fd(duplicate: Any) -> int:
    """Return the worker's copy of a descriptor of the master, closed on exec."""
    fd: int = duplicate.detach()
    os.set_inheritable(fd, False)
    return fd
