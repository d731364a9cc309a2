"""A channel of events from the processes under test to the test.

The test binds a Unix datagram socket and puts its path in the environment
of the manager it starts (``COTYLEDON_TESTKIT_CHANNEL``); any process of
the manager calls ``report(kind, **fields)`` to send one event, a JSON
datagram. Datagrams from many processes never interleave, and the test
reads them without parsing logs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from typing import Any
from typing import Final
from typing import final

import attrs

CHANNEL_ENV: Final = "COTYLEDON_TESTKIT_CHANNEL"
"""The environment variable that holds the channel's socket path."""

_MAX_DATAGRAM: Final = 65536

_sender: tuple[int, socket.socket] | None = None


@attrs.frozen
class ProbeEvent:
    """One event reported by a process under test."""

    kind: str
    pid: int
    time: float
    """``time.monotonic()`` in the sender when it reported the event."""
    fields: dict[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def report(kind: str, **fields: Any) -> None:
    """Send an event to the test that started this process, if any.

    Does nothing when the process was not started by a harness. ``fields``
    must be JSON-serialisable.
    """
    global _sender  # noqa: PLW0603
    path = os.environ.get(CHANNEL_ENV)
    if not path:
        return
    pid = os.getpid()
    if _sender is None or _sender[0] != pid:
        # One socket per process: a forked child makes its own.
        _sender = (pid, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM))
    payload = {"kind": kind, "pid": pid, "time": time.monotonic(), "fields": fields}
    _sender[1].sendto(json.dumps(payload).encode(), path)


@final
class EventChannel:
    """The receiving end: a datagram socket bound at ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind(path)
        self._socket.setblocking(False)
        self.events: list[ProbeEvent] = []

    def __repr__(self) -> str:
        return f"<EventChannel path={self.path!r} events={len(self.events)}>"

    def fileno(self) -> int:
        return self._socket.fileno()

    def receive(self) -> list[ProbeEvent]:
        """Read every datagram waiting; return the new events."""
        new = []
        while True:
            try:
                data = self._socket.recv(_MAX_DATAGRAM)
            except BlockingIOError:
                break
            raw = json.loads(data)
            new.append(ProbeEvent(raw["kind"], raw["pid"], raw["time"], raw["fields"]))
        self.events.extend(new)
        return new

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
