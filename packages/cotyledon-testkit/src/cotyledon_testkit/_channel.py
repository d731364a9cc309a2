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

from cotyledon_testkit._channel_env import CHANNEL_ENV
from cotyledon_testkit._socket_reader import SocketReader

MAX_EVENT_SIZE: Final = 65536
"""The maximum size of one event's JSON, in bytes, which is what ``receive``
reads from one datagram."""

_PREVIEW: Final = 200

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
    must be JSON-serialisable, and the event's JSON at most
    ``MAX_EVENT_SIZE`` bytes long, else ValueError is raised.
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
    data = json.dumps(payload).encode()
    if len(data) > MAX_EVENT_SIZE:
        raise ValueError(
            f"event {kind!r} is {len(data)} bytes of JSON, more than the {MAX_EVENT_SIZE} "
            "bytes that the harness's event channel carries: report a summary, or write "
            "the data to a file and report its path"
        )
    _sender[1].sendto(data, path)


class InvalidEventError(ValueError):
    """A datagram on the event channel was not a valid event."""


def _parse_event(data: bytes) -> ProbeEvent:
    preview = data[:_PREVIEW]
    if len(data) > MAX_EVENT_SIZE:
        raise ValueError(
            f"datagram larger than {MAX_EVENT_SIZE} bytes, cut at that size: {preview!r}"
        )
    try:
        raw = json.loads(data)
        return ProbeEvent(raw["kind"], raw["pid"], raw["time"], raw["fields"])
    # JSON nested deeper than the interpreter's recursion limit raises
    # RecursionError, which would otherwise end the thread that reads the
    # socket, and with it the channel.
    except (ValueError, TypeError, KeyError, RecursionError) as exc:
        raise ValueError(
            f"datagram of {len(data)} bytes is not an event ({type(exc).__name__}: {exc}): "
            f"{preview!r}"
        ) from None


@final
class EventChannel:
    """The receiving end: a datagram socket bound at ``path``.

    A thread reads the socket as soon as events arrive, so that no sender
    waits for room in its queue while the test does something else. The
    events it read wait for ``receive()``, and ``fileno()`` is readable
    while some do.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._socket.bind(path)
            self._socket.setblocking(False)
            self._reader = SocketReader(self._socket.fileno(), self._read_waiting, "event-channel")
        except BaseException:
            self._socket.close()
            raise
        self._owner_pid = os.getpid()
        self.events: list[ProbeEvent] = []

    def __repr__(self) -> str:
        return f"<EventChannel path={self.path!r} events={len(self.events)}>"

    def fileno(self) -> int:
        return self._reader.fileno()

    def receive(self) -> list[ProbeEvent]:
        """Return the events that arrived since the last call, and add them to
        ``events``.

        A datagram that is not a valid event (one larger than
        ``MAX_EVENT_SIZE``, or not the JSON that ``report`` sends) raises
        InvalidEventError once the valid events around it are in ``events``.
        """
        new = []
        invalid = []
        for item in self._reader.take():
            if isinstance(item, ProbeEvent):
                new.append(item)
            else:
                invalid.append(str(item))
        self.events.extend(new)
        if invalid:
            raise InvalidEventError(
                f"{len(invalid)} invalid datagram(s) on {self!r}, the other events were kept: "
                + "; ".join(invalid)
            )
        return new

    def close(self) -> None:
        """Close the socket, and remove its file in the process that bound it only."""
        self._reader.close()
        self._socket.close()
        if os.getpid() == self._owner_pid:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)

    def _read_waiting(self) -> list[ProbeEvent | ValueError]:
        """Read every datagram waiting; return for each an event, or the
        error that explains why it is not one."""
        read: list[ProbeEvent | ValueError] = []
        while True:
            try:
                # One byte more than an event may have, to notice a larger one.
                data = self._socket.recv(MAX_EVENT_SIZE + 1)
            except BlockingIOError:
                return read
            try:
                read.append(_parse_event(data))
            except ValueError as exc:
                read.append(exc)
