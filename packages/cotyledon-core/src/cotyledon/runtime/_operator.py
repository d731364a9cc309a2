"""The operator's control socket: status, readiness and liveness as JSON.

An opt-in Unix stream socket (``ServiceManager(control_socket=path)``),
mode 0600, served from the master's own selector loop, with no thread.
A client sends one request line, ``status``, ``ready`` or ``live``, and
gets one JSON document back. Then the master closes the connection.
``python -m cotyledon status|ready|live PATH`` is such a client.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import stat
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any
from typing import Final
from typing import final

from cotyledon.core import ManagerPhase
from cotyledon.core import ManagerStatus
from cotyledon.core import ServiceState

LOG = logging.getLogger(__name__)

REQUESTS: Final = ("status", "ready", "live")
_MAX_REQUEST: Final = 64
_MAX_CLIENTS: Final = 32
_BACKLOG: Final = 16


def status_document(status: ManagerStatus) -> dict[str, Any]:
    """Return a status snapshot as JSON-ready data."""
    return {
        "phase": status.phase.value,
        "ready": is_ready(status),
        "summary": status.summary(),
        "last_reload": None if status.last_reload is None else status.last_reload.value,
        "services": [
            {
                "name": service.name,
                "state": service.state.value,
                "workers": service.workers,
                "ready_workers": service.ready_workers,
                "restarts": service.restarts,
                "slots": [
                    {
                        "worker_id": worker.worker_id,
                        "state": worker.state.value,
                        "pid": worker.pid,
                        "ready": worker.ready,
                        "restarts": worker.restarts,
                        "uptime": worker.uptime,
                        "last_exit_code": worker.last_exit_code,
                    }
                    for worker in service.slots
                ],
            }
            for service in status.services
        ],
    }


def is_ready(status: ManagerStatus) -> bool:
    """Tell whether the manager serves: it runs, it has been ready once, and
    every service that still runs has at least one ready worker."""
    return (
        status.phase is ManagerPhase.RUNNING
        and status.ready
        and all(
            service.ready_workers > 0
            for service in status.services
            if service.state is ServiceState.RUNNING
        )
    )


def answer(request: str, status: ManagerStatus) -> dict[str, Any]:
    """Return the response to one request."""
    if request == "status":
        return status_document(status)
    if request == "ready":
        return {"ready": is_ready(status), "summary": status.summary()}
    if request == "live":
        # The master's loop built this response, so it is alive.
        return {"live": True, "phase": status.phase.value}
    return {"error": f"unknown request {request!r}; expected one of {', '.join(REQUESTS)}"}


@final
class _Client:
    """One connection: its request as it arrives, then its response as it leaves."""

    def __init__(self, connection: socket.socket) -> None:
        self.connection = connection
        self.received = b""
        self.to_send: bytes | None = None

    def __repr__(self) -> str:
        return f"<_Client fd={self.connection.fileno()} answered={self.to_send is not None}>"


@final
class OperatorSocket:
    """The listening socket and its connections, in the master's selector."""

    def __init__(self, path: str, selector: selectors.BaseSelector) -> None:
        self.path = path
        self._selector = selector
        # A socket left behind by an earlier run is replaced. Any other file
        # at that path is left alone, so bind() fails on it.
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._socket.bind(path)
            # Before listen(), so that no client connects while the mode is wider.
            os.chmod(path, 0o600)
            self._socket.listen(_BACKLOG)
        except BaseException:
            self._socket.close()
            raise
        self._socket.setblocking(False)
        self._clients: dict[int, _Client] = {}
        selector.register(self._socket, selectors.EVENT_READ, self)

    def __repr__(self) -> str:
        return f"<OperatorSocket path={self.path!r} clients={len(self._clients)}>"

    def fds(self) -> tuple[int, ...]:
        """Return the descriptors that a forked worker closes."""
        return (self._socket.fileno(), *self._clients)

    def serve(
        self,
        ready: Sequence[tuple[selectors.SelectorKey, int]],
        status: Callable[[], ManagerStatus],
    ) -> None:
        """Accept, read and answer what the selector reported ready."""
        for key, mask in ready:
            if key.data is self:
                self._accept()
            elif isinstance(key.data, _Client):
                if mask & selectors.EVENT_READ:
                    self._read(key.data, status)
                if mask & selectors.EVENT_WRITE:
                    self._write(key.data)

    def close(self) -> None:
        for client in list(self._clients.values()):
            self._drop(client)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(self._socket)
        self._socket.close()
        with contextlib.suppress(OSError):
            os.unlink(self.path)

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                LOG.warning("Control socket %s: accept failed: %s", self.path, exc)
                return
            if len(self._clients) >= _MAX_CLIENTS:
                connection.close()
                continue
            connection.setblocking(False)
            client = _Client(connection)
            self._clients[connection.fileno()] = client
            self._selector.register(connection, selectors.EVENT_READ, client)

    def _read(self, client: _Client, status: Callable[[], ManagerStatus]) -> None:
        try:
            data = client.connection.recv(_MAX_REQUEST)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.received += data
        if b"\n" not in client.received and data and len(client.received) < _MAX_REQUEST:
            return
        request = client.received.split(b"\n", 1)[0].decode("ascii", "replace").strip()
        document = answer(request, status())
        # Imported at the first request: most masters serve none, and each
        # module that the master imports makes every fork slower.
        import json

        client.to_send = json.dumps(document).encode() + b"\n"
        self._selector.modify(client.connection, selectors.EVENT_WRITE, client)
        self._write(client)

    def _write(self, client: _Client) -> None:
        if client.to_send is None:
            return
        try:
            sent = client.connection.send(client.to_send)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(client)
            return
        client.to_send = client.to_send[sent:]
        if not client.to_send:
            self._drop(client)

    def _drop(self, client: _Client) -> None:
        self._clients.pop(client.connection.fileno(), None)
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(client.connection)
        client.connection.close()


def query_control_socket(path: str, request: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one request to a manager's control socket and return the response.

    Raises OSError when the socket is unreachable or closes without a
    response, ValueError when the response is not JSON, and TypeError when
    it is not a JSON object.
    """
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        connection.connect(path)
        connection.sendall(request.encode("ascii") + b"\n")
        chunks: list[bytes] = []
        # The response is one line. Reading to its end, not to the end of the
        # connection, avoids waiting for a worker forked meanwhile, which
        # keeps a copy of the connection until it closes it.
        while not chunks or not chunks[-1].endswith(b"\n"):
            chunk = connection.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    if not chunks:
        raise OSError(f"the control socket {path} closed without a response")
    import json

    document = json.loads(b"".join(chunks))
    if not isinstance(document, dict):
        raise TypeError(f"the control socket {path} returned {document!r}, not a JSON object")
    return document
