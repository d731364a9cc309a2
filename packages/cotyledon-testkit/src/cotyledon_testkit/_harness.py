"""A real manager in a fresh interpreter, driven and observed by a test."""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from typing import Final
from typing import Protocol
from typing import TypeVar
from typing import final

from cotyledon import WorkerEventKind
from cotyledon_testkit._channel import EventChannel
from cotyledon_testkit._channel import ProbeEvent
from cotyledon_testkit._channel_env import CHANNEL_ENV
from cotyledon_testkit._lifecycle_events import ManagerEventKind
from cotyledon_testkit._lifecycle_events import ManagerLifecycleEvent
from cotyledon_testkit._lifecycle_events import WorkerLifecycleEvent
from cotyledon_testkit._lifecycle_events import live_workers
from cotyledon_testkit._lifecycle_events import manager_events
from cotyledon_testkit._lifecycle_events import worker_events
from cotyledon_testkit._owned_dir import OwnedTemporaryDirectory
from cotyledon_testkit._process_tree import ProcessInfo
from cotyledon_testkit._process_tree import format_process_tree
from cotyledon_testkit._process_tree import live_processes_of_session
from cotyledon_testkit._process_tree import read_process
from cotyledon_testkit._process_tree import session_of
from cotyledon_testkit._socket_path import check_socket_path
from cotyledon_testkit._socket_path import fits_multiprocessing_sockets

T = TypeVar("T")


class _Receiver(Protocol):
    """A socket that a harness's waits read too, such as a ``NotifyReceiver``."""

    def fileno(self) -> int: ...

    def receive(self) -> object: ...


DEFAULT_TIMEOUT: Final = 15.0
"""Seconds a wait lasts by default; generous, for a loaded machine."""

DEFAULT_POLL_INTERVAL: Final = 0.05
"""Seconds between two checks of a ``wait_for`` condition when no event comes."""

PARENT_PID_ENV: Final = "COTYLEDON_TESTKIT_PARENT_PID"
"""The environment variable that gives the launcher the pid of the test process."""

CLOSE_TIMEOUT: Final = 10.0
"""Seconds ``close()`` keeps killing the processes of a session."""

_LOG_TAIL_LINES: Final = 40
_WARNING_LINES: Final = 10
# The level field of the launcher's log format, after the date, time and pid.
_WARNING_LINE: Final = re.compile(r"^\S+ \S+ \d+ (WARNING|ERROR|CRITICAL) ")
_EVENT_TAIL: Final = 30

# Every harness started and not closed yet, by id(): the plugin's safety
# net and the atexit handler close them.
_open_harnesses: dict[int, ManagerProcess] = {}


class WaitError(AssertionError):
    """A condition awaited by a test did not come true."""


class WaitTimeoutError(WaitError):
    """A condition awaited by a test did not come true in time."""


class ManagerExitedError(WaitError):
    """The master exited before a condition that only it could make true."""


@final
class ManagerProcess:
    """Run ``target`` (``"package.module:function"``) in a new interpreter.

    The function builds a ``ServiceManager`` and calls ``run()``. The
    process starts in a session of its own and is killed by the kernel if
    the test process dies (Linux). Its output goes to a log file. The
    manager's lifecycle (``manager_*`` and ``worker_*`` events) and what
    its services send with ``cotyledon_testkit.report`` arrive in
    ``events``. ``close()`` (or leaving the ``with`` block) kills every
    process left in the session, whatever state the test is in.

    ``sys_path`` entries are prepended to the child's ``PYTHONPATH``;
    ``env`` is added to the child's environment. The root logger of the
    manager writes to the log file from ``log_level`` up, set before the
    target runs. ``TMPDIR`` names the
    directory of the harness, removed by ``close()`` with what the manager
    left in it (the socket of ``multiprocessing``'s fork server, when the
    test killed the master). The manager keeps the test's ``TMPDIR`` when
    the sockets of ``multiprocessing`` would not fit below the harness's
    directory, and ``env`` may name another. Raises OSError (ENAMETOOLONG) if the path of
    the harness's event socket is too long for a Unix socket.
    """

    def __init__(
        self,
        target: str,
        *,
        sys_path: Iterable[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        log_level: int | str = logging.DEBUG,
    ) -> None:
        if ":" not in target:
            raise ValueError(f"target must be 'module:function', got {target!r}")
        self.target = target
        self._log_level = _level_number(log_level)
        self._sys_path = [str(path) for path in sys_path]
        self._env = dict(env or {})
        self._cwd = cwd
        self._python = python
        # A short name, so that the paths of the Unix sockets below it (the
        # event socket and multiprocessing's sockets) fit in sun_path.
        self._dir = OwnedTemporaryDirectory(prefix="cotyledon-")
        self.log_path = Path(self._dir.name) / "manager.log"
        channel_path = str(Path(self._dir.name) / "events.sock")
        try:
            check_socket_path(
                channel_path,
                "the harness's event socket",
                "set TMPDIR to a shorter directory, such as /tmp",
            )
            self._channel = EventChannel(channel_path)
        except BaseException:
            self._dir.cleanup()
            raise
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()
        self._pidfd: int | None = None
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._channel, selectors.EVENT_READ)
        self._receivers: list[_Receiver] = []
        self._log_cache = ""
        self._closed = False
        # The channel's reader thread keeps the channel alive until it is
        # closed, so a harness that the test neither starts nor closes is
        # closed at the end of the session.
        _open_harnesses[id(self)] = self

    def __repr__(self) -> str:
        if self._process is None:
            state = "not started"
        elif self._process.returncode is None:
            state = f"pid={self._process.pid} running"
        else:
            state = f"pid={self._process.pid} exited={self._process.returncode}"
        closed = " closed" if self._closed else ""
        return f"<ManagerProcess {self.target} {state}{closed} events={len(self.events)}>"

    def __enter__(self) -> ManagerProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # Starting and stopping

    def start(self) -> ManagerProcess:
        """Start the manager's interpreter; return self.

        A harness whose interpreter failed to start is closed.
        """
        if self._process is not None:
            raise RuntimeError(f"{self!r} was already started")
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        env = dict(os.environ)
        # A test run under systemd (or under a socket-activating parent)
        # must not hand its own notify socket, watchdog or sockets to the
        # manager under test; pass them in ``env`` to test them.
        for name in list(env):
            if name == "NOTIFY_SOCKET" or name.startswith(("WATCHDOG_", "LISTEN_")):
                del env[name]
        env["PYTHONUNBUFFERED"] = "1"
        if fits_multiprocessing_sockets(self._dir.name):
            env["TMPDIR"] = self._dir.name
        env.update(self._env)
        env[CHANNEL_ENV] = self._channel.path
        env[PARENT_PID_ENV] = str(os.getpid())
        env["PYTHONPATH"] = os.pathsep.join(
            [*self._sys_path, *filter(None, [env.get("PYTHONPATH")])]
        )
        try:
            with open(self.log_path, "wb") as log:
                self._process = subprocess.Popen(
                    [
                        self._python,
                        "-m",
                        "cotyledon_testkit._launch",
                        self.target,
                        str(self._log_level),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self._cwd,
                    start_new_session=True,
                )
        except BaseException:
            # A with block does not call __exit__ when __enter__ raises.
            self.close()
            raise
        if hasattr(os, "pidfd_open"):
            self._pidfd = os.pidfd_open(self._process.pid)
            self._selector.register(self._pidfd, selectors.EVENT_READ)
        return self

    @property
    def pid(self) -> int:
        """The master's pid, which is also the id of its session."""
        return self._started().pid

    @property
    def closed(self) -> bool:
        """Whether ``close()`` has run, after which the harness reads no more events."""
        return self._closed

    @property
    def returncode(self) -> int | None:
        """The master's exit status (minus the signal number if killed), or
        None while it runs."""
        return self._started().poll()

    def send_signal(self, signum: int) -> None:
        """Send a signal to the master, if it still runs."""
        process = self._started()
        if process.poll() is None:
            process.send_signal(signum)

    def wait_exit(self, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait until the master exits; return its status."""
        process = self._started()
        self.wait_for(lambda: process.poll() is not None, timeout, "the master to exit")
        code = process.poll()
        assert code is not None
        return code

    def session_processes(self) -> list[ProcessInfo]:
        """Return the processes still in the manager's session, zombies too."""
        return live_processes_of_session(self._started().pid)

    def close(self) -> None:
        """Kill every process of the session, reap the master, free files.

        Safe to call more than once, and again after an interruption. Raises
        RuntimeError if a process of the session is still alive after
        ``CLOSE_TIMEOUT`` seconds of SIGKILL.
        """
        if self._closed:
            return
        survivors: list[ProcessInfo] = []
        process = self._process
        # A forked copy of the test process must not kill the managers of
        # the process that started them.
        if process is not None and os.getpid() == self._owner_pid:
            survivors = self._kill_session(process)
        self._release()
        self._closed = True
        _open_harnesses.pop(id(self), None)
        if survivors:
            raise RuntimeError(
                f"processes of {self!r} survived {CLOSE_TIMEOUT} s of SIGKILL:\n"
                + format_process_tree(survivors)
            )

    def _kill_session(self, process: subprocess.Popen[bytes]) -> list[ProcessInfo]:
        deadline = time.monotonic() + CLOSE_TIMEOUT
        members = [p for p in self.session_processes() if p.state != "Z"]
        while members or process.poll() is None:
            if time.monotonic() >= deadline:
                return members
            for member in members:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(member.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.05)
            members = [p for p in self.session_processes() if p.state != "Z"]
        return []

    def _release(self) -> None:
        if self._pidfd is not None:
            self._selector.unregister(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._selector.close()
        self._channel.close()
        # The log stays readable after the directory is gone.
        with contextlib.suppress(FileNotFoundError):
            self._log_cache = self.log_path.read_text(errors="replace")
        self._dir.cleanup()

    # Observing

    @property
    def events(self) -> list[ProbeEvent]:
        """Every event received so far, in the order of arrival."""
        return self._channel.events

    def log_text(self) -> str:
        """The master's and workers' combined output so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return self._log_cache

    def receive(self) -> list[ProbeEvent]:
        """Read the events that have arrived, without waiting; return the new ones."""
        if self._closed:
            return []
        return self._channel.receive()

    def mark(self) -> int:
        """Read the events that have arrived; return their count.

        Pass it as ``after`` to a wait, to wait for an event newer than
        everything seen so far.
        """
        self.receive()
        return len(self.events)

    def worker_events(
        self,
        service: str | None = None,
        worker_id: int | None = None,
        kind: WorkerEventKind | None = None,
        *,
        after: int = 0,
    ) -> list[WorkerLifecycleEvent]:
        """Return the workers' lifecycle events received so far that match."""
        return worker_events(
            self.events, service=service, worker_id=worker_id, kind=kind, after=after
        )

    def manager_events(
        self, kind: ManagerEventKind | None = None, *, after: int = 0
    ) -> list[ManagerLifecycleEvent]:
        """Return the manager's lifecycle events received so far, of ``kind`` if given."""
        return manager_events(self.events, kind=kind, after=after)

    def live_workers(self, service: str | None = None) -> dict[tuple[str, int], int]:
        """Map (service name, worker id) to the pid of each live worker.

        Built from the ``worker_started`` and ``worker_exited`` events, after
        reading the events that have arrived. A worker that has just died
        stays in the map until the master has reaped it and reported it.
        """
        self.receive()
        return live_workers(self.events, service)

    def worker_pid(self, service: str, worker_id: int) -> int:
        """Return the pid of the live worker of a slot; raise LookupError if none."""
        pid = self.live_workers(service).get((service, worker_id))
        if pid is None:
            raise LookupError(
                f"no live worker {service}({worker_id}); live workers: {self.live_workers()}"
            )
        return pid

    def restarts(self, service: str | None = None, worker_id: int | None = None) -> int:
        """Count the worker deaths that the master did not request.

        While the manager runs, the master restarts the worker after each.
        """
        self.receive()
        exits = self.worker_events(service, worker_id, WorkerEventKind.EXITED)
        return sum(1 for event in exits if event.stop_reason is None)

    # Waiting

    def wait_for(
        self,
        condition: Callable[[], T | None],
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "the condition",
        *,
        fail_on_exit: bool = False,
        poll_interval: float | None = DEFAULT_POLL_INTERVAL,
    ) -> T:
        """Wait until ``condition()`` returns a true value; return it.

        The condition is checked after each batch of events, when the
        master exits, and every ``poll_interval`` seconds, for a condition
        on something else than events, such as a file. With None it is
        checked on events and on the exit only.
        On timeout, WaitTimeoutError names ``what`` and shows the recent
        events, the log and the processes. With ``fail_on_exit``,
        ManagerExitedError is raised as soon as the master has exited and the
        condition is still false once every event it sent has been read.
        """
        process = self._started()
        deadline = time.monotonic() + timeout
        while True:
            # Polled before reading: everything the master sent before it
            # exited is then in the channel.
            exited = process.poll() is not None
            self.receive()
            for receiver in self._receivers:
                receiver.receive()
            result = condition()
            if result:
                return result
            if fail_on_exit and exited:
                status = process.returncode
                raise ManagerExitedError(
                    self._describe(
                        f"the master exited with status {status} while waiting for {what}"
                    )
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(
                    self._describe(f"timed out after {timeout} s waiting for {what}")
                )
            if self._closed:
                raise WaitError(self._describe(f"closed while waiting for {what}"))
            # Without a pidfd the master's exit cannot wake the selector, so
            # cap each wait.
            cap = remaining if self._pidfd is not None else min(remaining, 0.05)
            if poll_interval is not None:
                cap = min(cap, poll_interval)
            ready = self._selector.select(cap)
            if any(key.fd == self._pidfd for key, _ in ready):
                # The master has exited: check once more, then only the
                # channel wakes the wait.
                process.poll()
                assert self._pidfd is not None
                self._selector.unregister(self._pidfd)
                os.close(self._pidfd)
                self._pidfd = None

    def wait_event(
        self,
        kind: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        after: int = 0,
        **fields: Any,
    ) -> ProbeEvent:
        """Wait for an event of ``kind`` whose fields match ``fields``.

        Only events at index ``after`` or later count; pass ``mark()`` to
        wait for a new one.
        """

        def find() -> ProbeEvent | None:
            for event in self.events[after:]:
                if event.kind == kind and all(
                    event.fields.get(key) == value for key, value in fields.items()
                ):
                    return event
            return None

        described = kind + "".join(f" {key}={value!r}" for key, value in fields.items())
        return self.wait_for(find, timeout, f"event {described}", poll_interval=None)

    def wait_events(
        self, kind: str, count: int, timeout: float = DEFAULT_TIMEOUT, *, after: int = 0
    ) -> list[ProbeEvent]:
        """Wait until ``count`` events of ``kind`` have arrived; return them."""

        def find() -> list[ProbeEvent] | None:
            found = [event for event in self.events[after:] if event.kind == kind]
            return found if len(found) >= count else None

        return self.wait_for(find, timeout, f"{count} events {kind}", poll_interval=None)

    def wait_manager_event(
        self, kind: ManagerEventKind, timeout: float = DEFAULT_TIMEOUT, *, after: int = 0
    ) -> ManagerLifecycleEvent:
        """Wait until the manager announces ``kind`` (at index ``after`` or later).

        Raises ManagerExitedError at once if the master exits first.
        """

        def find() -> ManagerLifecycleEvent | None:
            found = manager_events(self.events, kind=kind, after=after)
            return found[0] if found else None

        return self.wait_for(
            find,
            timeout,
            f"the manager to be {kind.value}",
            fail_on_exit=True,
            poll_interval=None,
        )

    def wait_ready(self, timeout: float = DEFAULT_TIMEOUT) -> ManagerLifecycleEvent:
        """Wait until every initial worker of the manager is ready.

        The manager announces it once per run. Raises ManagerExitedError at
        once if the master exits first.
        """
        return self.wait_manager_event(ManagerEventKind.READY, timeout)

    def wait_worker_ready(
        self,
        service: str,
        worker_id: int,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        after: int = 0,
    ) -> WorkerLifecycleEvent:
        """Wait until the live worker of a slot is ready; return its event.

        The ready event must be at index ``after`` or later: after killing
        a worker, pass the ``mark()`` taken before the kill to wait for its
        replacement. Raises ManagerExitedError at once if the master exits
        first.
        """

        def find() -> WorkerLifecycleEvent | None:
            pid = live_workers(self.events, service).get((service, worker_id))
            if pid is None:
                return None
            ready = self.worker_events(service, worker_id, WorkerEventKind.READY, after=after)
            return next((event for event in reversed(ready) if event.pid == pid), None)

        return self.wait_for(
            find,
            timeout,
            f"worker {service}({worker_id}) to be ready",
            fail_on_exit=True,
            poll_interval=None,
        )

    def wait_worker_exited(
        self,
        service: str,
        worker_id: int,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        pid: int | None = None,
        after: int = 0,
    ) -> WorkerLifecycleEvent:
        """Wait until the master reports the exit of a worker of a slot
        (of the worker ``pid`` if given); return the event.

        Raises ManagerExitedError at once if the master exits first.
        """

        def find() -> WorkerLifecycleEvent | None:
            exits = self.worker_events(service, worker_id, WorkerEventKind.EXITED, after=after)
            return next((event for event in exits if pid is None or event.pid == pid), None)

        which = f" pid {pid}" if pid is not None else ""
        return self.wait_for(
            find,
            timeout,
            f"worker {service}({worker_id}){which} to exit",
            fail_on_exit=True,
            poll_interval=None,
        )

    def _read_while_waiting(self, receiver: _Receiver) -> None:
        """Receive from ``receiver`` in every wait until ``_stop_reading``,
        and wake the waits when it has something new."""
        if self._closed or receiver in self._receivers:
            return
        self._receivers.append(receiver)
        self._selector.register(receiver, selectors.EVENT_READ)

    def _stop_reading(self, receiver: _Receiver) -> None:
        if self._closed or receiver not in self._receivers:
            return
        self._receivers.remove(receiver)
        self._selector.unregister(receiver)

    # Acting on workers

    def signal_worker(self, service: str, worker_id: int, signum: int) -> int:
        """Send a signal to the live worker of a slot; return its pid.

        Raises LookupError if the slot has no live worker in the manager's
        session, so a signal never reaches a process that reused the pid of
        a dead worker.
        """
        pid = self.worker_pid(service, worker_id)
        self._signal_member(pid, signum, f"worker {service}({worker_id})")
        return pid

    def kill_worker(self, service: str, worker_id: int) -> int:
        """Kill the live worker of a slot with SIGKILL; return its pid."""
        return self.signal_worker(service, worker_id, signal.SIGKILL)

    def _signal_member(self, pid: int, signum: int, what: str) -> None:
        # An open pidfd keeps its process: once the process is found in the
        # manager's session, the signal cannot reach another process that
        # reused the pid.
        gone = LookupError(f"{what} pid {pid} has exited; live workers: {self.live_workers()}")
        try:
            pidfd = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        except ProcessLookupError:
            raise gone from None
        try:
            info = read_process(pid)
            if info is None or info.state == "Z":
                raise gone
            if session_of(pid) != self.pid:
                raise LookupError(f"{what} pid {pid} is not in the session of {self!r}")
            try:
                if pidfd is not None:
                    signal.pidfd_send_signal(pidfd, signum)
                else:
                    os.kill(pid, signum)
            except ProcessLookupError:
                raise gone from None
        finally:
            if pidfd is not None:
                os.close(pidfd)

    # Helpers

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self!r} is not started: call start() first")
        return self._process

    def _describe(self, problem: str) -> str:
        events = "\n".join(
            f"  {event.kind} pid={event.pid} {event.fields}" for event in self.events[-_EVENT_TAIL:]
        )
        lines = self.log_text().splitlines()
        log = "\n".join(lines[-_LOG_TAIL_LINES:])
        # Warnings and errors from before the tail, which a chatty DEBUG log
        # would push out of it.
        earlier = [line for line in lines[:-_LOG_TAIL_LINES] if _WARNING_LINE.search(line)]
        warnings = "\n".join(earlier[-_WARNING_LINES:])
        tree = format_process_tree(self.session_processes()) if self._process else ""
        # The live workers name the services: a misspelt name shows here.
        workers = ", ".join(
            f"{service}({worker_id}) pid {pid}"
            for (service, worker_id), pid in sorted(live_workers(self.events).items())
        )
        return (
            f"{problem} in {self!r}\n"
            f"live workers: {workers or '(none)'}\n"
            f"recent events:\n{events or '  (none)'}\n"
            f"processes of the session:\n{tree or '  (none)'}\n"
            + (f"warnings and errors before the log tail:\n{warnings}\n" if warnings else "")
            + f"log tail:\n{log}"
        )


class StartManager(Protocol):
    """The factory of the ``manager_process`` fixture: it takes the arguments
    of ``ManagerProcess``, starts the harness and returns it."""

    def __call__(
        self,
        target: str,
        *,
        sys_path: Iterable[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
        log_level: int | str = logging.DEBUG,
    ) -> ManagerProcess: ...


def _level_number(level: int | str) -> int:
    """Return the number of a logging level given by number or by name."""
    if isinstance(level, int):
        return level
    # The name of a known level gives its number; any other, a string.
    number = logging.getLevelName(level.upper())
    if isinstance(number, int):
        return number
    raise ValueError(
        f"invalid log_level {level!r}: expected a level of the logging module, such as "
        "logging.INFO or 'INFO'"
    )


def close_all_managers() -> int:
    """Close every harness of this process still open; return how many.

    Raises the first error of a ``close()`` once every harness is closed.
    """
    owned = [h for h in _open_harnesses.values() if h._owner_pid == os.getpid()]
    errors: list[BaseException] = []
    for harness in owned:
        try:
            harness.close()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]
    return len(owned)


def open_managers() -> list[ManagerProcess]:
    """Return the harnesses of this process not closed yet, started or not."""
    return [h for h in _open_harnesses.values() if h._owner_pid == os.getpid()]


# Outside pytest (a script that uses ManagerProcess), the managers left open
# are killed when the interpreter exits normally.
atexit.register(close_all_managers)
