"""The worker side: the process that runs one instance of a service.

The main thread of a worker waits on the signal wakeup pipe and acts on the
signals it reads, as the master's loop does. It runs ``terminate()`` and
``reload()`` itself, as cotyledon 2.x did, as soon as it has read their
signal, with no other thread to wake on the way; the signals that come
meanwhile are read once the call returns. The service's ``run()`` runs in
a thread of its own, also as in 2.x, and the worker ends at once if it
raises or calls ``sys.exit()``. A third thread watches the master from
the worker's start: its death is noticed whatever the main thread is
doing, in the service's constructor or in a call that never returns, and
the worker then ends within its graceful shutdown timeout.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import queue
import select
import selectors
import signal
import sys
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Final
from typing import NoReturn
from typing import Protocol

from cotyledon.core import ServiceId
from cotyledon.core import WorkerId
from cotyledon.core import WorkerReport
from cotyledon.core import record
from cotyledon.runtime import _proctitle
from cotyledon.runtime._control import ControlClient
from cotyledon.runtime._exits import status_of_system_exit
from cotyledon.runtime._hooks import OnNewWorkerHook
from cotyledon.runtime._hooks import run_hooks
from cotyledon.runtime._master_watch import MasterWatch
from cotyledon.runtime._own_group import signal_own_group
from cotyledon.runtime._own_group import wait_for_own_group
from cotyledon.runtime._self import WorkerReporter
from cotyledon.runtime._self import install_reporter
from cotyledon.runtime._signals import SignalWakeup
from cotyledon.runtime._signals import available_signals
from cotyledon.runtime._signals import set_handler
from cotyledon.runtime._signals import unblock

LOG = logging.getLogger(__name__)

_MAX_WAIT: Final = 86_400.0
"""The maximum single sleep of the master watch, in seconds."""

_DEADLINE_LOG_WAIT: Final = 1.0
"""Maximum seconds that the master watch waits for its log line before it
kills the worker at the deadline."""

# Signals that the master blocks around a spawn, so that a new child cannot
# run one of the master's handlers before it has installed its own. Plain
# numbers: each enum member that a new worker touches is a page it copies.
SPAWN_BLOCKED_SIGNALS: Final = [
    int(signum) for signum in available_signals("SIGTERM", "SIGINT", "SIGHUP", "SIGCHLD", "SIGALRM")
]

# The worker's own signals, as plain numbers for the same reason. SIGALRM
# is caught and dropped: an ignored signal would stay ignored in the
# programs that the service runs, across exec.
_CAUGHT_SIGNALS: Final = [
    int(signum) for signum in available_signals("SIGTERM", "SIGINT", "SIGHUP", "SIGALRM")
]
_SIGCHLD: Final = int(signal.SIGCHLD) if hasattr(signal, "SIGCHLD") else None


class ServiceLike(Protocol):
    """What the worker needs of a service object."""

    def run(self) -> None: ...

    def terminate(self) -> None: ...

    def reload(self) -> None: ...


@record
class WorkerRecipe:
    """How to build the service of one worker slot."""

    service_id: ServiceId
    worker_id: WorkerId
    service_name: str
    factory: Callable[..., Any]
    args: Sequence[Any]
    kwargs: Mapping[str, Any]
    new_worker_hooks: Sequence[OnNewWorkerHook]
    graceful_shutdown_timeout: float | None
    """Seconds that ``terminate()`` may take once the master is gone."""
    announces_readiness: bool = False
    """The service reports ready itself; otherwise the worker does as
    ``run()`` starts."""
    heartbeat_timeout: float | None = None
    """The service's heartbeat timeout, which paces the heartbeats sent."""


@record
class WorkerBootstrap:
    """Everything a new worker process needs; picklable for spawn contexts."""

    recipe: WorkerRecipe
    master_pid: int
    program_name: str
    report_fd: int
    """The write end of the master's report pipe, where the worker writes its
    reports. A worker started by spawn or forkserver gets a copy under a
    number of its own, which replaces this one."""
    inherited_fds: Sequence[int] = ()
    """The master's own descriptors, that a forked worker closes."""


def exit_worker(status: int) -> NoReturn:
    """End the worker process now with ``status``, after flushing output.

    ``os._exit`` skips the atexit handlers, which in a forked worker are the
    master's, and never waits for the service's threads.
    """
    _flush_output()
    os._exit(status)


def _flush_output() -> None:
    """Flush the root logger's handlers and the standard streams."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def worker_main(bootstrap: WorkerBootstrap, master_pidfd: int | None = None) -> NoReturn:
    """Run one worker to its end; the target of the worker process.

    A forked worker passes the pidfd of its master that it inherited.
    """
    try:
        _WorkerLoop(bootstrap, master_pidfd).run()
    except BaseException:
        recipe = bootstrap.recipe
        LOG.exception("Worker %s(%d) failed in its own loop", recipe.service_name, recipe.worker_id)
    exit_worker(1)


def _run_aside(target: Callable[[], None], name: str) -> threading.Thread | None:
    """Run ``target`` in a new daemon thread and return the thread, or run
    it in this thread and return None if no thread can start."""
    thread = threading.Thread(target=target, name=name, daemon=True)
    try:
        thread.start()
    except RuntimeError:
        target()
        return None
    return thread


def _read_waiter(fds: Sequence[int]) -> Callable[[float | None], list[int]]:
    """Return a function that waits up to a timeout in seconds (None: no
    limit) for some of ``fds`` to be readable, and returns those.

    ``select.poll`` is one C object. A ``selectors`` selector is Python code
    and objects that a new worker would write to, and each write copies a
    page that the worker shares with the master. The selector serves where
    poll is missing.
    """
    if hasattr(select, "poll"):
        poller = select.poll()
        for fd in fds:
            poller.register(fd, select.POLLIN)

        def wait_poll(timeout: float | None) -> list[int]:
            milliseconds = None if timeout is None else math.ceil(timeout * 1000)
            return [fd for fd, _ in poller.poll(milliseconds)]

        return wait_poll
    selector = selectors.DefaultSelector()
    for fd in fds:
        selector.register(fd, selectors.EVENT_READ)

    def wait_selector(timeout: float | None) -> list[int]:
        return [key.fd for key, _ in selector.select(timeout)]

    return wait_selector


class _WorkerLoop:
    def __init__(self, bootstrap: WorkerBootstrap, master_pidfd: int | None) -> None:
        recipe = bootstrap.recipe
        self._boot = recipe
        self._master_pid = bootstrap.master_pid
        self._pid = os.getpid()
        self._title = f"{recipe.service_name}({recipe.worker_id}) [{self._pid}]"
        # The calls that the main thread runs next, in order: a terminate()
        # queued during a reload runs once the reload has returned.
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # Guards _terminating, which the master watch sets too.
        self._terminate_lock = threading.Lock()
        self._terminating = False
        # When the main thread read the latest reload request.
        self._reload_received_at = 0.0
        # Set by the master watch once the master has died.
        self._orphaned = False

        # The wakeup pipe first: a forked worker still has the master's.
        self._wakeup = SignalWakeup(caught=_CAUGHT_SIGNALS)
        if _SIGCHLD is not None:
            set_handler(_SIGCHLD, signal.SIG_DFL)
        # try rather than contextlib.suppress, whose Python code and objects
        # a new worker would otherwise copy from the master.
        for fd in bootstrap.inherited_fds:
            try:  # noqa: SIM105
                os.close(fd)
            except OSError:
                pass
        # A process group of its own, so that the master can kill the worker
        # with everything it started, and so that a signal sent to the
        # master's group (Ctrl-C in a terminal) reaches the master only.
        if hasattr(os, "setpgid"):
            try:  # noqa: SIM105
                os.setpgid(0, 0)
            except OSError:
                pass
        _proctitle.set_worker_title(bootstrap.program_name, recipe.service_name, recipe.worker_id)
        self._master = MasterWatch(bootstrap.master_pid, master_pidfd)
        self._control = ControlClient(bootstrap.report_fd)
        self._reporter = WorkerReporter(self._control.send, recipe.heartbeat_timeout)
        install_reporter(self._reporter)
        unblock(SPAWN_BLOCKED_SIGNALS)

    def run(self) -> NoReturn:
        boot = self._boot
        # The master's death is watched from here on, so that a constructor
        # or an on_new_worker hook that never returns cannot leave the
        # worker behind. A worker that cannot start this thread fails here.
        threading.Thread(target=self._watch_master, name="cotyledon-watch", daemon=True).start()
        try:
            service: ServiceLike = boot.factory(boot.worker_id, *boot.args, **boot.kwargs)
        except SystemExit as exc:
            status = status_of_system_exit(exc)
            LOG.info("Worker %s exited with status %d while starting", self._title, status)
            self._exit(status)
        except BaseException:
            LOG.exception("Worker %s failed to start: its service raised", self._title)
            self._exit(1)
        # Services whose __init__ does not call Service.__init__ still get
        # their worker id, as in cotyledon 2.x.
        try:  # noqa: SIM105
            service.worker_id = boot.worker_id  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        self._service = service
        run_hooks(
            "on_new_worker", list(boot.new_worker_hooks), boot.service_id, boot.worker_id, service
        )

        threading.Thread(target=self._call_run, name="cotyledon-run", daemon=True).start()
        wait = _read_waiter([self._wakeup.fd])
        while True:
            wait(None)
            # Signals read together count once each: a burst of SIGHUP that
            # came during a reload requests one more reload, not many.
            for byte in dict.fromkeys(self._wakeup.drain()):
                if byte:
                    self._on_signal(byte)
            self._run_calls()

    def _run_calls(self) -> None:
        """Run the queued calls of the service, in the main thread."""
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                return
            call()
            if os.getpid() != self._pid:
                # A child that the call forked and that came back here ends,
                # as it would end after the call in a thread of its own.
                exit_worker(0)

    def _watch_master(self) -> None:
        """Wait for the master's death, then bound the worker's stop.

        Runs in a thread of its own, so that the death is noticed while the
        main thread runs ``reload()`` or ``terminate()``, however long they
        take. With a pidfd the thread sleeps until the master exits;
        otherwise it checks every ``poll_interval`` seconds.
        """
        fd = self._master.fd
        wait = None if fd is None else _read_waiter([fd])
        while True:
            if wait is not None:
                wait(None)
            else:
                time.sleep(self._master.poll_interval or 0.0)
            if not self._master.master_alive():
                break
        self._orphaned = True
        timeout = self._boot.graceful_shutdown_timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        # A log call blocks while stderr is a full pipe, or while another
        # thread blocked on it has the handler's lock. So another thread logs
        # and requests terminate(), and this one still kills at the deadline.
        _run_aside(self._on_master_death, "cotyledon-orphan")
        if deadline is None:
            return
        while (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, _MAX_WAIT))
        logger = _run_aside(self._log_deadline_kill, "cotyledon-deadline")
        if logger is not None:
            logger.join(_DEADLINE_LOG_WAIT)
        signal_own_group(signal.SIGKILL)
        # Reached only by a worker that leads no group.
        os._exit(1)

    def _on_master_death(self) -> None:
        LOG.warning(
            "Worker %s: master process %d is gone; terminating", self._title, self._master_pid
        )
        self._begin_terminate()

    def _log_deadline_kill(self) -> None:
        LOG.error(
            "Worker %s did not end within %s s after the master died; killing "
            "it and its process group with SIGKILL",
            self._title,
            self._boot.graceful_shutdown_timeout,
        )
        _flush_output()

    def _exit(self, status: int) -> NoReturn:
        """End the worker with ``status``.

        Once the master is gone, nothing would stop the processes left in
        the worker's group. They get SIGTERM, as the master would send them,
        and the worker waits for them to end. At the graceful shutdown
        deadline, the master watch kills the group. With no deadline, the
        group gets SIGKILL as the worker exits, as the master kills what is
        left of its workers' groups at its own exit.
        """
        if self._orphaned and os.getpid() == self._pid:
            signal_own_group(signal.SIGTERM)
            if self._boot.graceful_shutdown_timeout is None:
                _flush_output()
                signal_own_group(signal.SIGKILL)
            wait_for_own_group()
        exit_worker(status)

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGTERM:
            self._begin_terminate()
        elif signum == signal.SIGINT:
            LOG.info("Worker %s interrupted, exiting now", self._title)
            self._exit(1)
        elif signum == getattr(signal, "SIGHUP", None):
            self._begin_reload()

    def _begin_terminate(self) -> None:
        with self._terminate_lock:
            if self._terminating:
                return
            self._terminating = True
        LOG.info("Worker %s terminating", self._title)
        # The master bounds the stop, which it may not have sent itself.
        self._control.send(WorkerReport.TERMINATING)
        self._calls.put(self._call_terminate)
        # Wakes the main thread when the master watch queued the call.
        self._wakeup.wake()

    def _begin_reload(self) -> None:
        if self._terminating:
            LOG.info("Worker %s is terminating; reload skipped", self._title)
            return
        self._reload_received_at = time.monotonic()
        LOG.info("Worker %s reloading", self._title)
        self._calls.put(self._call_reload)

    def _call_service(self, method: Callable[[], None], name: str) -> None:
        """Call ``method`` of the service, named ``name`` in the log. The
        worker ends at once if it raises or calls ``sys.exit()``."""
        try:
            method()
        except SystemExit as exc:
            self._exit(status_of_system_exit(exc))
        except BaseException:
            LOG.exception("Worker %s: %s raised", self._title, name)
            self._exit(1)

    def _call_run(self) -> None:
        if not self._boot.announces_readiness:
            self._reporter.ready()
        self._call_service(self._service.run, "run()")
        LOG.debug("Worker %s: run() returned; waiting for a signal", self._title)

    def _call_terminate(self) -> NoReturn:
        self._call_service(self._service.terminate, "terminate()")
        self._exit(0)

    def _call_reload(self) -> None:
        if self._terminating:
            LOG.info("Worker %s is terminating; reload skipped", self._title)
            return
        # The report carries the time of the request that this reload
        # covers: the master waits for a report of a reload received after
        # its own latest request.
        received_at = self._reload_received_at
        self._call_service(self._service.reload, "reload()")
        if os.getpid() != self._pid:
            # A child that reload() forked and that returned sends no report,
            # because only the worker reports. _run_calls then ends the child.
            return
        self._control.send(WorkerReport.RELOADED, received_at)
