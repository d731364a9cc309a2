"""The control channel: workers report to their master.

A report is one line, ``b"<pid> <report>\\n"``, or
``b"<pid> reloaded <time>\\n"`` with the ``time.monotonic()`` at which the
worker received the request of the reload that it finished. Every worker
writes its reports to a pipe of the master: a forked worker inherits it,
and a worker started by spawn or forkserver gets a copy from
``multiprocessing``. A pipe has room for 64 KiB on Linux (pipe(7)), which
is thousands of reports, and a write of up to ``PIPE_BUF`` bytes never
interleaves with another. Only the master, its workers and the processes
that they fork hold the pipe, so no other process of the machine can send
a report in a worker's name. The master needs two descriptors however
many workers it has.
"""

from __future__ import annotations

import logging
import os
import queue
import select
import threading
from typing import Final
from typing import final

from cotyledon.core import WorkerReport
from cotyledon.core import WorkerReported

LOG = logging.getLogger(__name__)

_PIPE_READ_SIZE: Final = 1 << 16
_STOP: Final = b""
"""The item that ends the sender thread. No report is empty."""


@final
class ControlServer:
    """The master's end of the control channel: the report pipe.

    Both ends are non-blocking and closed on exec. The master keeps the
    write end open for the workers that it starts later. Each worker keeps
    the read end as well as the write end, so that the pipe keeps a reader
    when the master dies. A write to a pipe without a reader raises SIGPIPE.
    That kills a worker whose program restored the default action of the
    signal, before its ``terminate()`` has run. The worker never reads the
    pipe, and its reports wait there, or in its sender thread, until it
    exits.
    """

    def __init__(self) -> None:
        self.pipe_read, self.pipe_write = os.pipe()
        os.set_blocking(self.pipe_read, False)
        os.set_blocking(self.pipe_write, False)
        self._partial = b""

    def __repr__(self) -> str:
        return f"<ControlServer pipe_read={self.pipe_read} pipe_write={self.pipe_write}>"

    def receive(self) -> list[WorkerReported]:
        """Read every report waiting, in order.

        The time of a ``RELOADED`` report is on the ``time.monotonic()`` clock.
        """
        reports: list[WorkerReported] = []
        for line in self._read_pipe():
            _parse(line, reports)
        return reports

    def _read_pipe(self) -> list[bytes]:
        chunks = [self._partial]
        while True:
            try:
                chunk = os.read(self.pipe_read, _PIPE_READ_SIZE)
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
        os.close(self.pipe_read)
        os.close(self.pipe_write)


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

    ``pipe_write`` is the worker's copy of the write end of the master's
    pipe, which is non-blocking. A report goes out at once when the pipe
    has room. The first one that finds none, while the master is busy
    with thousands of workers, starts a sender thread, which then writes
    every report in order, waiting for room, so that no report is lost and
    ``run()`` never waits for one. Most workers never need that thread.
    """

    def __init__(self, pipe_write: int) -> None:
        self._pipe_write = pipe_write
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._lost_logged = False
        self._foreign_logged = False

    def __repr__(self) -> str:
        return f"<ControlClient pipe_write={self._pipe_write}>"

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
                    # The write end is non-blocking, and a report (far
                    # below PIPE_BUF) is written whole or not at all.
                    os.write(self._pipe_write, data)
                except BlockingIOError:
                    pass  # the pipe is full: the thread waits for room
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

    @property
    def sends_in_background(self) -> bool:
        """True once reports go out through the sender thread."""
        return self._sender is not None

    def close(self, timeout: float = 1.0) -> None:
        """Send what is queued, waiting up to ``timeout`` seconds.

        A worker never needs it: it ends with ``os._exit``. The pipe stays
        open.
        """
        with self._lock:
            sender = self._sender
            if sender is not None:
                self._queue.put(_STOP)
        if sender is not None:
            sender.join(timeout)

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
