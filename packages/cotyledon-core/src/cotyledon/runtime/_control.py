"""The control channel: workers report to their master.

One Unix datagram socket, bound by the master, receives every worker's
reports; each datagram is ``b"<pid> <report>"``. Datagrams from many
workers never interleave, and the master needs one descriptor however
many workers it has. On Linux the socket lives in the abstract namespace
(no file to clean up); elsewhere in a private temporary directory. Any
start method works, since a worker only needs the address.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import sys
import threading
from typing import Final
from typing import final

from cotyledon.core import WorkerReport

LOG = logging.getLogger(__name__)

_MAX_DATAGRAM: Final = 256
_RECEIVE_BUFFER: Final = 1 << 20
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

    def __repr__(self) -> str:
        return f"<ControlServer address={self.address!r}>"

    def fileno(self) -> int:
        return self._socket.fileno()

    def receive(self) -> list[tuple[int, WorkerReport]]:
        """Read every report waiting, in order of arrival."""
        reports = []
        while True:
            try:
                data = self._socket.recv(_MAX_DATAGRAM)
            except BlockingIOError:
                break
            try:
                pid_text, report_text = data.decode("ascii").split(" ", 1)
                reports.append((int(pid_text), WorkerReport(report_text)))
            except ValueError:
                LOG.warning("Ignored an invalid report on the control channel: %r", data)
        return reports

    def close(self) -> None:
        self._socket.close()
        if self._directory is not None:
            import shutil

            shutil.rmtree(self._directory, ignore_errors=True)


@final
class ControlClient:
    """A worker's end of the control channel; safe to use from any thread.

    A Unix datagram socket keeps only a few datagrams
    (``net.unix.max_dgram_qlen``, 10 by default on Linux) until the master
    reads them, and a master that is spawning a thousand workers reads none
    for a while. A report goes out at once when there is room; the first
    one that finds none starts a sender thread, which then sends every
    report in order, waiting for room, so that no report is lost and
    ``run()`` never waits for one. Most workers never need that thread.
    """

    def __init__(self, address: str) -> None:
        self._address = address
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._queue: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._sender: threading.Thread | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<ControlClient address={self._address!r}>"

    def send(self, report: WorkerReport) -> None:
        """Send a report to the master, or queue it for the sender thread."""
        # _value_ is the member's plain attribute: ``value`` is a property
        # whose Python code would be one more thing that a new worker runs.
        data = f"{os.getpid()} {report._value_}".encode("ascii")
        with self._lock:
            if self._sender is None:
                try:
                    self._socket.sendto(data, socket.MSG_DONTWAIT, self._address)
                except BlockingIOError:
                    pass  # the master's queue is full: the thread waits for room
                except OSError as exc:
                    _log_lost(data, exc)
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
        """Send what is queued, waiting up to ``timeout`` seconds, then close.

        A worker never needs it: it ends with ``os._exit``.
        """
        with self._lock:
            sender = self._sender
            if sender is not None:
                self._queue.put(_STOP)
        if sender is not None:
            sender.join(timeout)
        self._socket.close()

    def _send_forever(self) -> None:
        while True:
            data = self._queue.get()
            if data == _STOP:
                return
            try:
                self._socket.sendto(data, self._address)
            except OSError as exc:
                _log_lost(data, exc)


def _log_lost(data: bytes, exc: OSError) -> None:
    # The master is gone: the worker notices through its pidfd.
    LOG.warning("Could not send the report %r to the master: %s", data, exc)
