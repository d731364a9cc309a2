"""The worker side: the process that runs one instance of a service.

The main thread of a worker runs a small event loop, like the master's: it
waits on the signal wakeup pipe and on the master's pidfd, and acts on what
arrives. The service's ``run()`` runs in a thread of its own, as in
cotyledon 2.x, and ``terminate()`` and ``reload()`` run one after the other
in a second one, so that the main thread always stays free to notice
signals and the master's death. Both threads start with the worker: a stop
or a reload never waits for a new thread, and never fails for want of one.
Starting the second one on demand saves a new worker about 0.2 ms of CPU,
but the first reload of 16 workers then took 6.6 ms instead of 4.0 ms
(measured with the benchmark's reload scenario). The worker process ends
through ``exit_worker`` only, from the main thread.
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
from cotyledon.runtime._self import WorkerReporter
from cotyledon.runtime._self import install_reporter
from cotyledon.runtime._signals import SignalWakeup
from cotyledon.runtime._signals import available_signals
from cotyledon.runtime._signals import set_handler
from cotyledon.runtime._signals import unblock

LOG = logging.getLogger(__name__)

_MAX_WAIT: Final = 86_400.0
"""The maximum wait of the worker's loop, in seconds."""

# Signals that the master blocks around a spawn, so that a new child cannot
# run one of the master's handlers before it has installed its own. Plain
# numbers: each enum member that a new worker touches is a page it copies.
SPAWN_BLOCKED_SIGNALS: Final = [
    int(signum) for signum in available_signals("SIGTERM", "SIGINT", "SIGHUP", "SIGCHLD", "SIGALRM")
]

# The worker's own signals, as plain numbers for the same reason.
_CAUGHT_SIGNALS: Final = [
    int(signum) for signum in available_signals("SIGTERM", "SIGINT", "SIGHUP")
]
_IGNORED_SIGNALS: Final = [int(signum) for signum in available_signals("SIGALRM")]
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
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):
            handler.flush()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)


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
        self._title = f"{recipe.service_name}({recipe.worker_id}) [{os.getpid()}]"
        self._results: queue.SimpleQueue[int] = queue.SimpleQueue()
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        # Guards _reloading and _reload_pending, which the main thread and
        # the calls thread share. A terminate() queued during a reload runs
        # once the reload has returned, on the same thread.
        self._reload_lock = threading.Lock()
        self._terminating = False
        self._reload_pending = False
        self._reloading = False
        # When the main thread received the latest reload request.
        self._reload_received_at = 0.0
        self._terminate_deadline: float | None = None

        # The wakeup pipe first: a forked worker still has the master's.
        self._wakeup = SignalWakeup(caught=_CAUGHT_SIGNALS, ignored=_IGNORED_SIGNALS)
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
        try:
            service: ServiceLike = boot.factory(boot.worker_id, *boot.args, **boot.kwargs)
        except SystemExit as exc:
            status = status_of_system_exit(exc)
            LOG.info("Worker %s exited with status %d while starting", self._title, status)
            exit_worker(status)
        except BaseException:
            LOG.exception("Worker %s failed to start: its service raised", self._title)
            exit_worker(1)
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

        # A worker that cannot start this thread fails here, before run().
        threading.Thread(target=self._serve_calls, name="cotyledon-calls", daemon=True).start()
        threading.Thread(target=self._call_run, name="cotyledon-run", daemon=True).start()
        self._loop()

    def _loop(self) -> NoReturn:
        watched = self._master.fd
        wait = _read_waiter([self._wakeup.fd] if watched is None else [self._wakeup.fd, watched])
        while True:
            ready = wait(self._timeout())
            for byte in self._wakeup.drain():
                if byte:
                    self._on_signal(byte)
            if not self._results.empty():
                exit_worker(self._results.get())
            # With a pidfd, the master is checked only when its pidfd is
            # readable, not at every signal or reload.
            check_master = watched is None or watched in ready
            if check_master and not self._terminating and not self._master.master_alive():
                self._on_master_death()
            if (
                self._terminate_deadline is not None
                and time.monotonic() >= self._terminate_deadline
            ):
                LOG.error(
                    "Worker %s: terminate() did not return within %s s after the "
                    "master died; exiting",
                    self._title,
                    self._boot.graceful_shutdown_timeout,
                )
                exit_worker(1)

    def _timeout(self) -> float | None:
        timeouts = []
        if not self._terminating and self._master.poll_interval is not None:
            timeouts.append(self._master.poll_interval)
        if self._terminate_deadline is not None:
            timeouts.append(max(0.0, self._terminate_deadline - time.monotonic()))
        # poll() takes at most 2**31 - 1 ms (about 24.8 days), and a graceful
        # shutdown timeout may be longer: the loop then wakes once a day.
        return min(_MAX_WAIT, *timeouts) if timeouts else None

    def _on_signal(self, signum: int) -> None:
        if signum == signal.SIGTERM:
            self._begin_terminate()
        elif signum == signal.SIGINT:
            LOG.info("Worker %s interrupted, exiting now", self._title)
            exit_worker(1)
        elif signum == getattr(signal, "SIGHUP", None):
            self._begin_reload()

    def _on_master_death(self) -> None:
        LOG.warning(
            "Worker %s: master process %d is gone; terminating", self._title, self._master_pid
        )
        timeout = self._boot.graceful_shutdown_timeout
        if timeout is not None:
            self._terminate_deadline = time.monotonic() + timeout
        self._begin_terminate()

    def _begin_terminate(self) -> None:
        if self._terminating:
            return
        self._terminating = True
        LOG.info("Worker %s terminating", self._title)
        # The master bounds the stop, which it may not have sent itself.
        self._control.send(WorkerReport.TERMINATING)
        self._calls.put(self._call_terminate)

    def _begin_reload(self) -> None:
        if self._terminating:
            LOG.info("Worker %s is terminating; reload skipped", self._title)
            return
        with self._reload_lock:
            self._reload_received_at = time.monotonic()
            if self._reloading:
                # Coalesce: the running reload is followed by exactly one more.
                self._reload_pending = True
                return
            self._reloading = True
        LOG.info("Worker %s reloading", self._title)
        self._calls.put(self._call_reload)

    def _serve_calls(self) -> None:
        """Run the service's ``terminate()`` and ``reload()`` calls, in order."""
        pid = os.getpid()
        while True:
            call = self._calls.get()
            try:
                call()
            except BaseException:
                LOG.exception("Worker %s: a call to the service failed", self._title)
                self._finish(1)
            if os.getpid() != pid:
                # A child that the call forked and that came back here: its
                # thread ends, and with it the child, as it would end after
                # the call in a thread of its own.
                return

    def _finish(self, status: int) -> None:
        """Ask the main thread to end the worker with ``status``."""
        self._results.put(status)
        self._wakeup.wake()

    def _call_run(self) -> None:
        if not self._boot.announces_readiness:
            self._reporter.ready()
        try:
            self._service.run()
        except SystemExit as exc:
            self._finish(status_of_system_exit(exc))
        except BaseException:
            LOG.exception("Worker %s: run() raised", self._title)
            self._finish(1)
        else:
            LOG.debug("Worker %s: run() returned; waiting for a signal", self._title)

    def _call_terminate(self) -> None:
        try:
            self._service.terminate()
        except SystemExit as exc:
            self._finish(status_of_system_exit(exc))
        except BaseException:
            LOG.exception("Worker %s: terminate() raised", self._title)
            self._finish(1)
        else:
            self._finish(0)

    def _call_reload(self) -> None:
        """Call ``reload()`` until no reload request is pending.

        The check for a pending request and the end of the reloading state
        are one step under the lock: a request that came between them
        would otherwise find a reload in progress and never get its own.
        """
        while True:
            # The report carries the time of the latest request that this
            # reload covers: the master waits for a report of a reload
            # received after its own latest request.
            with self._reload_lock:
                received_at = self._reload_received_at
            try:
                self._service.reload()
            except SystemExit as exc:
                self._finish(status_of_system_exit(exc))
                return
            except BaseException:
                LOG.exception("Worker %s: reload() raised", self._title)
                self._finish(1)
                return
            self._control.send(WorkerReport.RELOADED, received_at)
            with self._reload_lock:
                if not self._reload_pending or self._terminating:
                    self._reloading = False
                    return
                self._reload_pending = False
