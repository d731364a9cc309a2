"""The control channel: workers report to their master.

A report is one line, ``b"<pid> <report>\\n"``, or
``b"<pid> reloaded <time>\\n"`` with the ``time.monotonic()`` at which the
worker received the request of the reload that it finished. Workers that the master
forks write it to a pipe that they inherit. A pipe has room for 64 KiB on
Linux (pipe(7)), which is thousands of reports, and a write of up to
``PIPE_BUF`` bytes never interleaves with another. Workers started by spawn
or forkserver have no copy of the pipe, so they send each report as a
datagram to a Unix socket that the master binds. On Linux the socket
lives in the abstract namespace (no file to clean up); elsewhere in a
private temporary directory. The master needs three descriptors however
many workers it has.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import select
import socket
import sys
import threading
from typing import Final
from typing import final

from cotyledon.core import WorkerReport
from cotyledon.core import WorkerReported

LOG = logging.getLogger(__name__)

_MAX_DATAGRAM: Final = 256
_RECEIVE_BUFFER: Final = 1 << 20
_PIPE_READ_SIZE: Final = 1 << 16
_STOP: Final = b""
"""The item that ends the sender thread. No report is empty."""


@final
class ControlServer:
    """The master's end of the control channel."""

    def __init__(self) -> None:
        self._directory: str | None = None
        if sys.platform.startswith("linux"):
            # os.urandom rather than secrets: secrets imports hashlib and
            # OpenSSL, which make the master bigger and every fork slower.
            self.address = f"\0cotyledon-{os.getpid()}-{os.urandom(8).hex()}"
        else:
            # Imported here: with what they import, they would add about
            # 1 MB to a Linux master, which never needs them.
            import tempfile

            self._directory = tempfile.mkdtemp(prefix="cotyledon-")
            self.address = os.path.join(self._directory, "control")
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(self.address)
        self._socket.setblocking(False)
        with contextlib.suppress(OSError):
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        # Both ends are non-blocking and closed on exec. The write end stays
        # open in the master for the workers it forks later.
        self._pipe_read, self.pipe_write = os.pipe()
        os.set_blocking(self._pipe_read, False)
        os.set_blocking(self.pipe_write, False)
        self._partial = b""

    def __repr__(self) -> str:
        return f"<ControlServer address={self.address!r} pipe_write={self.pipe_write}>"

    def fds(self) -> tuple[int, int]:
        """Return the descriptors to watch for reading: the socket and the pipe."""
        return self._socket.fileno(), self._pipe_read

    def master_only_fds(self) -> tuple[int]:
        """Return the descriptors that a forked worker closes: the socket.

        A worker keeps the pipe's read end as well as its write end, so that
        the pipe keeps a reader when the master dies. A write to a pipe
        without one raises SIGPIPE, which kills a worker whose program
        restored the default action of that signal, before its
        ``terminate()`` has run. The worker never reads the pipe, and its
        reports wait there, or in its sender thread, until it exits.
        """
        return (self._socket.fileno(),)

    def receive(self) -> list[WorkerReported]:
        """Read every report waiting: the pipe's in order, then the socket's.

        The time of a ``RELOADED`` report is on the ``time.monotonic()`` clock.
        """
        reports: list[WorkerReported] = []
        for line in self._read_pipe():
            _parse(line, reports)
        while True:
            try:
                data = self._socket.recv(_MAX_DATAGRAM)
            except BlockingIOError:
                break
            _parse(data.rstrip(b"\n"), reports)
        return reports

    def _read_pipe(self) -> list[bytes]:
        chunks = [self._partial]
        while True:
            try:
                chunk = os.read(self._pipe_read, _PIPE_READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        # A read may end inside a line when more is waiting than it takes.
        # The rest of that line comes with the next read.
        *lines, self._partial = b"".join(chunks).split(b"\n")
        return lines

    def close(self) -> None:
        self._socket.close()
        os.close(self._pipe_read)
        os.close(self.pipe_write)
        if self._directory is not None:
            import shutil

            shutil.rmtree(self._directory, ignore_errors=True)


def _parse(data: bytes, reports: list[WorkerReported]) -> None:
    try:
        pid_text, report_text, *rest = data.decode("ascii").split(" ", 2)
        received_at = float(rest[0]) if rest else None
        reports.append(WorkerReported(int(pid_text), WorkerReport(report_text), received_at))
    except ValueError:
        LOG.warning("Ignored an invalid report on the control channel: %r", data)


@final
class ControlClient:
    """A worker's end of the control channel; safe to use from any thread.

    A forked worker passes ``pipe_write``, the write end of the master's
    pipe, and its reports go down the pipe. Other workers send theirs to
    the socket at ``address``. A Unix datagram socket keeps only a few
    datagrams (``net.unix.max_dgram_qlen``, 10 by default on Linux) until
    the master reads them, and a master that is starting a thousand
    workers reads none for a while. A report goes out at once when there
    is room; the first one that finds none starts a sender thread, which
    then sends every report in order, waiting for room, so that no report
    is lost and ``run()`` never waits for one. Most workers never need
    that thread.
    """

    def __init__(self, address: str, pipe_write: int | None = None) -> None:
        self._address = address
        self._pipe_write = pipe_write
        self._socket = (
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) if pipe_write is None else None
        )
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._lost_logged = False
        self._foreign_logged = False

    def __repr__(self) -> str:
        if self._pipe_write is not None:
            return f"<ControlClient pipe_write={self._pipe_write}>"
        return f"<ControlClient address={self._address!r}>"

    def send(self, report: WorkerReport, received_at: float | None = None) -> None:
        """Send a report to the master, or queue it for the sender thread.

        ``received_at`` is the ``time.monotonic()`` at which the worker
        received the request that the report is about, if any.

        A process forked from the worker sends nothing, because the master
        accepts reports from the worker's pid only. The fork may also have
        copied the lock while a thread of the worker held it, and no thread
        of the child would ever release it.
        """
        pid = os.getpid()
        if pid != self._pid:
            self._drop_foreign(report, pid)
            return
        # _value_ is the member's plain attribute: ``value`` is a property
        # whose Python code would be one more thing that a new worker runs.
        if received_at is None:
            data = f"{pid} {report._value_}\n".encode("ascii")
        else:
            data = f"{pid} {report._value_} {received_at!r}\n".encode("ascii")
        with self._lock:
            if self._sender is None:
                try:
                    self._send_now(data)
                except BlockingIOError:
                    pass  # the master's queue is full: the thread waits for room
                except OSError as exc:
                    self._log_lost(data, exc)
                    return
                else:
                    return
                self._sender = threading.Thread(
                    target=self._send_forever, name="cotyledon-report", daemon=True
                )
                self._sender.start()
            self._queue.put(data)

    def _send_now(self, data: bytes) -> None:
        """Send ``data`` without waiting; raise BlockingIOError when full."""
        if self._socket is not None:
            self._socket.sendto(data, socket.MSG_DONTWAIT, self._address)
            return
        assert self._pipe_write is not None
        # The pipe's write end is non-blocking, and a write of a report
        # (far below PIPE_BUF) writes it whole or raises BlockingIOError.
        os.write(self._pipe_write, data)

    @property
    def sends_in_background(self) -> bool:
        """True once reports go out through the sender thread."""
        return self._sender is not None

    def close(self, timeout: float = 1.0) -> None:
        """Send what is queued, waiting up to ``timeout`` seconds, then close.

        A worker never needs it: it ends with ``os._exit``. The inherited
        pipe stays open.
        """
        with self._lock:
            sender = self._sender
            if sender is not None:
                self._queue.put(_STOP)
        if sender is not None:
            sender.join(timeout)
        if self._socket is not None:
            self._socket.close()

    def _send_forever(self) -> None:
        while True:
            data = self._queue.get()
            if data == _STOP:
                return
            try:
                self._send_waiting(data)
            except OSError as exc:
                self._log_lost(data, exc)

    def _send_waiting(self, data: bytes) -> None:
        """Send ``data``, waiting for room as long as it takes."""
        if self._socket is not None:
            self._socket.sendto(data, self._address)
            return
        assert self._pipe_write is not None
        poller = select.poll()
        poller.register(self._pipe_write, select.POLLOUT)
        while True:
            try:
                os.write(self._pipe_write, data)
            except BlockingIOError:
                # A forked worker keeps a read end of the pipe itself, so the
                # pipe never breaks: once the master is gone, this waits
                # until the worker exits.
                poller.poll()
            else:
                return

    def _log_lost(self, data: bytes, exc: OSError) -> None:
        # The master is gone, and the worker notices through its pidfd: the
        # reports that follow would each fail the same way.
        if self._lost_logged:
            return
        self._lost_logged = True
        LOG.warning(
            "Could not send the report %r to the master: %s; later reports that fail "
            "are not logged",
            data,
            exc,
        )

    def _drop_foreign(self, report: WorkerReport, pid: int) -> None:
        if self._foreign_logged:
            return
        self._foreign_logged = True
        LOG.warning(
            "Process %d, forked from worker process %d, reported %s: only the worker "
            "itself reports to the master, so this and later reports of the process "
            "are dropped",
            pid,
            self._pid,
            report._value_,
        )
