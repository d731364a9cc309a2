"""A real manager in a fresh interpreter, driven and observed by a test."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any
from typing import Final
from typing import TypeVar
from typing import final

from cotyledon_testkit._channel import CHANNEL_ENV
from cotyledon_testkit._channel import EventChannel
from cotyledon_testkit._channel import ProbeEvent
from cotyledon_testkit._process_tree import ProcessInfo
from cotyledon_testkit._process_tree import live_processes_of_session

T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 15.0
"""Seconds a wait lasts by default; generous, for a loaded machine."""

_LOG_TAIL_LINES: Final = 40
_EVENT_TAIL: Final = 30


class WaitTimeoutError(AssertionError):
    """A condition awaited by a test did not come true in time."""


@final
class ManagerProcess:
    """Run ``target`` (``"package.module:function"``) in a new interpreter.

    The function builds a ``ServiceManager`` and calls ``run()``. The
    process starts in a session of its own; its output goes to a log file;
    its services report events with ``cotyledon_testkit.report``, which
    arrive in ``events``. ``close()`` (or leaving the ``with`` block) kills
    every process left in the session, whatever state the test is in.

    ``sys_path`` entries are prepended to the child's ``PYTHONPATH``.
    """

    def __init__(
        self,
        target: str,
        *,
        sys_path: Iterable[str | os.PathLike[str]] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        python: str = sys.executable,
    ) -> None:
        if ":" not in target:
            raise ValueError(f"target must be 'module:function', got {target!r}")
        self.target = target
        self._sys_path = [str(path) for path in sys_path]
        self._env = dict(env or {})
        self._cwd = cwd
        self._python = python
        self._dir = tempfile.TemporaryDirectory(prefix="cotyledon-testkit-")
        self.log_path = Path(self._dir.name) / "manager.log"
        self._channel = EventChannel(str(Path(self._dir.name) / "events.sock"))
        self._process: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._channel, selectors.EVENT_READ)

    def __repr__(self) -> str:
        if self._process is None:
            state = "not started"
        elif self._process.returncode is None:
            state = f"pid={self._process.pid} running"
        else:
            state = f"pid={self._process.pid} exited={self._process.returncode}"
        return f"<ManagerProcess {self.target} {state} events={len(self.events)}>"

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
        """Start the manager's interpreter."""
        if self._process is not None:
            raise RuntimeError(f"{self!r} was already started")
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self._env)
        env[CHANNEL_ENV] = self._channel.path
        env["PYTHONPATH"] = os.pathsep.join(
            [*self._sys_path, *filter(None, [env.get("PYTHONPATH")])]
        )
        with open(self.log_path, "wb") as log:
            self._process = subprocess.Popen(
                [self._python, "-m", "cotyledon_testkit._launch", self.target],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self._cwd,
                start_new_session=True,
            )
        if hasattr(os, "pidfd_open"):
            self._pidfd = os.pidfd_open(self._process.pid)
            self._selector.register(self._pidfd, selectors.EVENT_READ)
        return self

    @property
    def pid(self) -> int:
        """The master's pid."""
        return self._started().pid

    @property
    def returncode(self) -> int | None:
        """The master's exit status (minus the signal number if killed), or
        None while it runs."""
        return self._started().poll()

    def send_signal(self, signum: int) -> None:
        """Send a signal to the master."""
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
        """Kill every process of the session, reap the master, free files."""
        process = self._process
        if process is not None:
            deadline = time.monotonic() + 10.0
            while time.monotonic() < deadline:
                members = [p for p in self.session_processes() if p.state != "Z"]
                if not members and process.poll() is not None:
                    break
                for member in members:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(member.pid, signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=0.05)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=1.0)
        if self._pidfd is not None:
            self._selector.unregister(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._selector.close()
        self._channel.close()
        # The log is kept readable until the directory is cleaned up.
        self._log_cache = self.log_text()
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
            return getattr(self, "_log_cache", "")

    def receive(self) -> list[ProbeEvent]:
        """Read the events that have arrived, without waiting."""
        return self._channel.receive()

    def wait_for(
        self,
        condition: Callable[[], T | None],
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "the condition",
    ) -> T:
        """Wait until ``condition()`` returns a true value; return it.

        The condition is checked after each batch of events and when the
        master exits; there is no polling loop. On timeout, the error names
        ``what`` and shows the recent events, the log and the processes.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._channel.receive()
            result = condition()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(self._describe_timeout(what, timeout))
            # Without a pidfd the master's exit cannot wake the selector, so
            # cap each wait.
            cap = remaining if self._pidfd is not None else min(remaining, 0.05)
            ready = self._selector.select(cap)
            if any(key.fd == self._pidfd for key, _ in ready):
                # The master has exited: check once more, then only the
                # channel wakes the wait.
                self._started().poll()
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

        Only events at index ``after`` or later count; pass
        ``len(harness.events)`` to wait for a new one.
        """

        def find() -> ProbeEvent | None:
            for event in self.events[after:]:
                if event.kind == kind and all(
                    event.fields.get(key) == value for key, value in fields.items()
                ):
                    return event
            return None

        described = kind + "".join(f" {key}={value!r}" for key, value in fields.items())
        return self.wait_for(find, timeout, f"event {described}")

    def wait_events(
        self, kind: str, count: int, timeout: float = DEFAULT_TIMEOUT, *, after: int = 0
    ) -> list[ProbeEvent]:
        """Wait until ``count`` events of ``kind`` have arrived; return them."""

        def find() -> list[ProbeEvent] | None:
            found = [event for event in self.events[after:] if event.kind == kind]
            return found if len(found) >= count else None

        return self.wait_for(find, timeout, f"{count} events {kind}")

    def live_workers(self, service: str | None = None) -> dict[tuple[str, int], int]:
        """Map (service name, worker id) to the pid of each live worker.

        Built from the ``worker_started`` and ``worker_exited`` events that
        the manager's lifecycle listener reports; call ``receive()`` or a
        wait first to take in the latest events.
        """
        live: dict[tuple[str, int], int] = {}
        for event in self.events:
            if service is not None and event.get("service") != service:
                continue
            key = (event.get("service"), event.get("worker_id"))
            if event.kind == "worker_started":
                live[key] = event["worker_pid"]
            elif event.kind == "worker_exited" and live.get(key) == event["worker_pid"]:
                del live[key]
        return live

    def wait_ready(self, timeout: float = DEFAULT_TIMEOUT) -> ProbeEvent:
        """Wait until every initial worker of the manager is ready."""
        return self.wait_event("manager_ready", timeout)

    def signal_worker(self, service: str, worker_id: int, signum: int) -> int:
        """Send a signal to the live worker of a slot; return its pid."""
        self.receive()
        pid = self.live_workers(service).get((service, worker_id))
        if pid is None:
            raise LookupError(
                f"no live worker {service}({worker_id}); live workers: {self.live_workers()}"
            )
        os.kill(pid, signum)
        return pid

    def _started(self) -> subprocess.Popen[bytes]:
        if self._process is None:
            raise RuntimeError(f"{self!r} is not started: call start() first")
        return self._process

    def _describe_timeout(self, what: str, timeout: float) -> str:
        events = "\n".join(
            f"  {event.kind} pid={event.pid} {event.fields}" for event in self.events[-_EVENT_TAIL:]
        )
        log = "\n".join(self.log_text().splitlines()[-_LOG_TAIL_LINES:])
        processes = "\n".join(
            f"  {p.pid} ppid={p.ppid} pgid={p.pgid} {p.state} {p.command}"
            for p in self.session_processes()
        )
        return (
            f"timed out after {timeout} s waiting for {what} in {self!r}\n"
            f"recent events:\n{events or '  (none)'}\n"
            f"processes of the session:\n{processes or '  (none)'}\n"
            f"log tail:\n{log}"
        )
