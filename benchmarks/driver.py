"""Starting the measured processes, hearing their events, reading /proc, ending them.

Every master (or floor parent) starts in a session of its own, so the
driver can find everything that it started, workers included, by session
id in /proc. ``Run.close`` kills the master by its pidfd, then its process
group, then each process left in its session, and always runs, whatever
happened in the scenario.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import resource
import selectors
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from typing import Final

from benchmarks import channel

REPO: Final = Path(__file__).resolve().parent.parent
CLOCK_TICKS: Final = os.sysconf("SC_CLK_TCK")
_RECEIVE_SIZE: Final = 4096
# Worth asking for: the events of a 1024-worker start arrive at once.
_RECEIVE_BUFFER: Final = 4 * 1024 * 1024
# The driver keeps a pidfd open per worker that it watches. Its children
# get the limit that the driver itself was given.
_DRIVER_NOFILE: Final = 8192
_given_nofile: tuple[int, int] | None = None


class ScenarioError(Exception):
    """A failure to measure a scenario, with the reason in the message."""


class ScenarioTimeoutError(ScenarioError):
    """A timeout: the event that a scenario waited for did not come in time."""


@dataclasses.dataclass(frozen=True)
class Event:
    """One report of a measured process, timestamped by that process."""

    kind: str
    worker_id: int
    pid: int
    t: float
    detail: str


def raise_own_file_limit() -> None:
    """Let the driver hold a pidfd per worker; its children keep the old limit."""
    global _given_nofile  # noqa: PLW0603
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    _given_nofile = (soft, hard)
    wanted = _DRIVER_NOFILE if hard == resource.RLIM_INFINITY else min(hard, _DRIVER_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _restore_file_limit() -> None:
    # Runs in the child between fork and exec.
    if _given_nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, _given_nofile)


class EventSocket:
    """The driver's end of the event channel: a bound Unix datagram socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(str(path))
        self._socket.setblocking(False)
        with contextlib.suppress(OSError):
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        self._token = ""

    def __repr__(self) -> str:
        return f"<EventSocket {self.path} run={self._token}>"

    def fileno(self) -> int:
        return self._socket.fileno()

    def new_run(self) -> str:
        """Start taking the events of a new run only; return its token."""
        self._token = uuid.uuid4().hex[:12]
        return self._token

    def drain(self) -> list[Event]:
        """Return the events of the current run that are waiting, without blocking."""
        events: list[Event] = []
        while True:
            try:
                data = self._socket.recv(_RECEIVE_SIZE)
            except BlockingIOError:
                return events
            event = self._parse(data)
            if event is not None:
                events.append(event)

    def _parse(self, data: bytes) -> Event | None:
        fields = data.decode(errors="replace").split(" ", 5)
        if len(fields) != 6 or fields[0] != self._token:
            return None
        _, kind, worker_id, pid, t, detail = fields
        return Event(kind, int(worker_id), int(pid), float(t), detail)

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@dataclasses.dataclass(frozen=True)
class ProcStat:
    """The fields of /proc/PID/stat that the driver uses."""

    state: str
    session: int
    cpu_seconds: float
    """User and system time of every thread, those that have ended too."""


def read_stat(pid: int) -> ProcStat | None:
    """Read /proc/PID/stat; None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name, in parentheses, may hold spaces.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return ProcStat(fields[0], int(fields[3]), (utime + stime) / CLOCK_TICKS)


def context_switches(pid: int) -> int:
    """Voluntary and involuntary context switches of every live thread of ``pid``."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    total += int(line.split()[1])
    return total


def pss_kib(pid: int) -> int:
    """Return the proportional set size of ``pid``, in KiB, from smaps_rollup."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ScenarioError(f"no Pss line in /proc/{pid}/smaps_rollup")


def session_members(session: int) -> list[int]:
    """Return the live (not zombie) processes of a session."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = read_stat(int(entry.name))
        if stat is not None and stat.session == session and stat.state != "Z":
            members.append(int(entry.name))
    return members


def open_member(pid: int, session: int) -> int | None:
    """Open a pidfd of ``pid`` if it is still a live member of ``session``, else return None.

    The check comes after the pidfd is open, so the pidfd cannot point to
    another process that took the pid in between.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    stat = read_stat(pid)
    if stat is None or stat.session != session or stat.state == "Z":
        os.close(pidfd)
        return None
    return pidfd


class Run:
    """One start of a master (or a floor) and everything it starts.

    Use it as a context manager: leaving the ``with`` block kills whatever
    of the run is left.
    """

    def __init__(self, events: EventSocket, command: Sequence[str], log_path: Path) -> None:
        self._events = events
        self._command = list(command)
        self._log_path = log_path
        self._log: IO[bytes] | None = None
        self._selector = selectors.DefaultSelector()
        self._process: subprocess.Popen[bytes] | None = None
        self._pidfd: int | None = None
        self._watched: dict[int, int] = {}
        """pidfd -> pid, of the workers whose exit the run waits for."""
        self.t0 = 0.0
        """The driver's clock just before it started the master."""
        self.pid = 0
        self.events: list[Event] = []
        self.live: dict[int, int] = {}
        """worker id -> pid of the latest worker that reported ``run``."""
        self.gone: dict[int, float] = {}
        """pid -> when the driver saw it exit, for the master and watched workers."""
        self.status: int | None = None
        """The master's exit status once it has exited (minus a signal number)."""

    def __repr__(self) -> str:
        return f"<Run pid={self.pid} {self._command[-3:]} events={len(self.events)}>"

    def __enter__(self) -> Run:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        token = self._events.new_run()
        environment = dict(os.environ)
        environment[channel.SOCKET_ENV] = str(self._events.path)
        environment[channel.RUN_ENV] = token
        self._log = self._log_path.open("wb")
        self._selector.register(self._events, selectors.EVENT_READ, None)
        self.t0 = time.monotonic()
        self._process = subprocess.Popen(
            self._command,
            cwd=REPO,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_restore_file_limit,  # noqa: PLW1509
        )
        self.pid = self._process.pid
        self._pidfd = os.pidfd_open(self.pid)
        self._selector.register(self._pidfd, selectors.EVENT_READ, self.pid)

    @property
    def master_alive(self) -> bool:
        return self.status is None

    def runs_of(self, worker_id: int) -> list[Event]:
        return [e for e in self.events if e.kind == "run" and e.worker_id == worker_id]

    def of_kind(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]

    def _record(self, event: Event) -> None:
        self.events.append(event)
        if event.kind == "run":
            self.live[event.worker_id] = event.pid

    def _step(self, timeout: float) -> None:
        """Wait up to ``timeout`` for events or exits, and record them."""
        for key, _ in self._selector.select(max(0.0, timeout)):
            if key.data is None:
                for event in self._events.drain():
                    self._record(event)
                continue
            now = time.monotonic()
            pid = int(key.data)
            self._selector.unregister(key.fileobj)
            self.gone[pid] = now
            if pid == self.pid:
                assert self._process is not None
                self.status = self._process.wait()
            else:
                os.close(key.fd)
                del self._watched[key.fd]

    def wait_until(self, done: Callable[[], bool], timeout: float, what: str) -> None:
        """Record events until ``done()``; raise if the master exits first or time runs out."""
        deadline = time.monotonic() + timeout
        while not done():
            if not self.master_alive:
                raise ScenarioError(f"the master exited with status {self.status} {what}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ScenarioTimeoutError(f"not done within {timeout:g} s: {what}")
            self._step(remaining)

    def hold(self, seconds: float) -> None:
        """Record events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            self._step(remaining)

    def wait_running(self, worker_ids: Iterable[int], timeout: float) -> float:
        """Wait until each worker id has reported ``run``; return the last report's time."""
        expected = set(worker_ids)
        try:
            self.wait_until(lambda: expected <= self.live.keys(), timeout, "start")
        except ScenarioTimeoutError:
            running = len(expected & self.live.keys())
            raise ScenarioTimeoutError(
                f"timed out: {running} of {len(expected)} workers running after {timeout:g} s"
            ) from None
        return max(self.runs_of(worker_id)[0].t for worker_id in expected)

    def signal_master(self, signum: int) -> float:
        """Send ``signum`` to the master; return the driver's clock just before."""
        assert self._pidfd is not None
        now = time.monotonic()
        signal.pidfd_send_signal(self._pidfd, signum)
        return now

    def watch(self, pids: Iterable[int]) -> None:
        """Record the exit of each of ``pids`` (those already gone count as gone now)."""
        for pid in pids:
            pidfd = open_member(pid, self.pid)
            if pidfd is None:
                self.gone[pid] = time.monotonic()
                continue
            self._watched[pidfd] = pid
            self._selector.register(pidfd, selectors.EVENT_READ, pid)

    def kill_worker(self, worker_id: int) -> float:
        """SIGKILL the live worker ``worker_id``; return the driver's clock just before."""
        pidfd = open_member(self.live[worker_id], self.pid)
        if pidfd is None:
            raise ScenarioError(f"worker {worker_id} was gone before it was killed")
        try:
            now = time.monotonic()
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        finally:
            os.close(pidfd)
        return now

    def stop(self, signum: int, timeout: float) -> float:
        """Send ``signum`` to the master and wait until it and every worker are gone.

        Return the seconds from the signal to the last exit.
        """
        workers = list(self.live.values())
        self.watch(workers)
        sent = self.signal_master(signum)
        self.wait_gone([self.pid, *workers], timeout, f"after {signal.Signals(signum).name}")
        return max(self.gone[pid] for pid in [self.pid, *workers]) - sent

    def wait_gone(self, pids: Sequence[int], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not all(pid in self.gone for pid in pids):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                left = sum(pid not in self.gone for pid in pids)
                raise ScenarioTimeoutError(
                    f"{left} of the master and its workers still alive {timeout:g} s {what}"
                )
            self._step(remaining)

    def leftovers(self) -> list[int]:
        """Return the processes of the run's session that are still alive."""
        return session_members(self.pid)

    def log_tail(self, lines: int = 6) -> str:
        """Return the last lines of the master's output, for failure reports."""
        try:
            text = self._log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def close(self) -> None:
        """Kill whatever of the run is left: master, process group, session."""
        try:
            if self._process is not None:
                self._kill_all()
        finally:
            for pidfd in self._watched:
                os.close(pidfd)
            self._watched.clear()
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None
            self._selector.close()
            if self._log is not None:
                self._log.close()

    def _kill_all(self) -> None:
        assert self._process is not None
        assert self._pidfd is not None
        if self.status is None:
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        # A worker that has left the master's process group is still in its
        # session. Killing the master first means that no new worker can
        # join the session while it is searched.
        for _ in range(10):
            members = [pid for pid in session_members(self.pid) if pid != self.pid]
            if not members:
                break
            opened = (open_member(pid, self.pid) for pid in members)
            pidfds = [pidfd for pidfd in opened if pidfd is not None]
            try:
                for pidfd in pidfds:
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                _wait_readable(pidfds, 5.0)
            finally:
                for pidfd in pidfds:
                    os.close(pidfd)
        if self.status is None:
            self.status = self._process.wait(timeout=10)


def _wait_readable(fds: Sequence[int], timeout: float) -> None:
    """Wait until each of ``fds`` is readable (pidfds: their process has exited)."""
    if not fds:
        return
    with selectors.DefaultSelector() as selector:
        for fd in fds:
            selector.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        pending = len(fds)
        while pending and (remaining := deadline - time.monotonic()) > 0:
            for key, _ in selector.select(remaining):
                selector.unregister(key.fileobj)
                pending -= 1
