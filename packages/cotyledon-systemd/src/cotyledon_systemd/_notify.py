"""An sd_notify client: ``KEY=VALUE`` datagrams to the service manager.

sd_notify(3): "These functions send a single datagram with the state
string as payload to the AF_UNIX socket referenced in the $NOTIFY_SOCKET
environment variable."
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from collections.abc import Mapping
from typing import Final
from typing import TypeAlias
from typing import final

NOTIFY_SOCKET_ENV: Final = "NOTIFY_SOCKET"

SEND_TIMEOUT: Final = 1.0
"""Seconds a send waits by default for room in the receiver's queue, so
that a service manager that stops reading cannot stall the sender for
long."""

MAX_MESSAGE_BYTES: Final = 4095
"""The maximum payload, in bytes, that systemd reads whole. Its
``manager_dispatch_notify_fd()`` (src/core/manager.c) receives each
message into a buffer of ``NOTIFY_BUFFER_MAX`` bytes, defined as
``PIPE_BUF`` (4096 on Linux), and ignores a message that does not fit
("Received notify message exceeded maximum size. Ignoring."). The limit is
one byte under, because versions differ on a message that fills it."""

# The size of sun_path in struct sockaddr_un on Linux, see unix(7).
_MAX_ADDRESS_BYTES: Final = 108

FieldValue: TypeAlias = str | int
Fields: TypeAlias = Mapping[str, FieldValue] | Iterable[tuple[str, FieldValue]]


class InvalidNotifySocketError(ValueError):
    """``NOTIFY_SOCKET`` contains no socket address that a client can send to."""


def notify_address(value: str) -> bytes:
    """Return the socket address that a ``NOTIFY_SOCKET`` value names.

    Raise ``InvalidNotifySocketError`` for an empty value, a relative path,
    an empty abstract name or an address too long for a Unix socket.
    """
    if not value:
        raise InvalidNotifySocketError(
            f"{NOTIFY_SOCKET_ENV} is set but empty: expected an absolute socket path "
            "or an abstract socket name starting with '@'"
        )
    if value.startswith("@"):
        # sd_notify(3): "If the first character of $NOTIFY_SOCKET is "@", the
        # string is understood as Linux abstract namespace socket."
        if len(value) == 1:
            raise InvalidNotifySocketError(
                f"{NOTIFY_SOCKET_ENV}={value!r} names an abstract socket with an empty name"
            )
        # os.environ decodes bytes that are not UTF-8 as surrogates, so
        # os.fsencode() restores the name's bytes, as it does for a path.
        address = b"\0" + os.fsencode(value[1:])
    elif value.startswith("/"):
        address = os.fsencode(value)
    else:
        raise InvalidNotifySocketError(
            f"{NOTIFY_SOCKET_ENV} must be an absolute socket path or an abstract socket "
            f"name starting with '@', got {value!r}"
        )
    if len(address) > _MAX_ADDRESS_BYTES:
        raise InvalidNotifySocketError(
            f"{NOTIFY_SOCKET_ENV}={value!r} is {len(address)} bytes long; a Unix socket "
            f"address holds at most {_MAX_ADDRESS_BYTES}"
        )
    return address


def format_message(fields: Fields) -> bytes:
    """Encode fields as one sd_notify payload: ``KEY=VALUE`` lines, UTF-8.

    sd_notify(3): "The state parameter should contain a newline-separated
    list of variable assignments, similar in style to an environment
    block." Keys must be non-empty and contain no ``=``. Neither keys nor
    values may contain a newline, a carriage return or a NUL character:
    systemd splits a message into fields at both newline and carriage
    return. Raise ``ValueError`` for a payload longer than
    ``MAX_MESSAGE_BYTES``, which systemd would ignore whole.
    """
    items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
    if not items:
        raise ValueError("an sd_notify message needs at least one KEY=VALUE field")
    lines = []
    for key, value in items:
        if not isinstance(key, str) or not key or any(c in key for c in "=\n\r\0"):
            raise ValueError(
                f"invalid sd_notify field name {key!r}: it must be a non-empty string "
                "without '=', newline, carriage return or NUL"
            )
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise TypeError(
                f"the value of sd_notify field {key} must be a str or an int, "
                f"got {value!r} ({type(value).__name__})"
            )
        text = str(value)
        if any(c in text for c in "\n\r\0"):
            raise ValueError(
                f"the value of sd_notify field {key} contains a newline, a carriage return "
                f"or a NUL: {text!r}"
            )
        lines.append(f"{key}={text}")
    payload = "\n".join(lines).encode()
    if len(payload) > MAX_MESSAGE_BYTES:
        raise ValueError(
            f"the sd_notify message is {len(payload)} bytes long, and systemd ignores one of "
            f"more than {MAX_MESSAGE_BYTES} bytes: shorten its values (STATUS, say) or send "
            "the fields in several messages"
        )
    return payload


@final
class Notifier:
    """Send sd_notify messages to the socket that ``NOTIFY_SOCKET`` names.

    With ``notify_socket`` None (the variable is unset) every call does
    nothing and returns False: the process does not run under a service
    manager that listens. The socket is created on first use, is
    close-on-exec, and is made anew in a forked child. A send waits up to
    ``send_timeout`` seconds for room in the receiver's queue, and with 0
    it does not wait: it raises ``BlockingIOError`` at once.
    """

    def __init__(self, notify_socket: str | None, *, send_timeout: float = SEND_TIMEOUT) -> None:
        if not send_timeout >= 0:
            raise ValueError(f"send_timeout must be >= 0 seconds, got {send_timeout!r}")
        self.notify_socket = notify_socket
        self.send_timeout = send_timeout
        self._address = None if notify_socket is None else notify_address(notify_socket)
        self._socket: tuple[int, socket.socket] | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """Return a notifier for the ``NOTIFY_SOCKET`` of ``environ`` (``os.environ``)."""
        env = os.environ if environ is None else environ
        return cls(env.get(NOTIFY_SOCKET_ENV))

    def __repr__(self) -> str:
        return f"<Notifier {self.notify_socket!r}>"

    @property
    def enabled(self) -> bool:
        """True when messages go somewhere."""
        return self._address is not None

    def notify(self, fields: Fields = (), /, **more: FieldValue) -> bool:
        """Send ``fields`` and ``more`` in one datagram; return True if sent.

        ``notifier.notify(READY=1, STATUS="serving")`` sends
        ``READY=1\\nSTATUS=serving``. Raise ``OSError`` when the send fails
        (no socket at that address, or no process reads it).
        """
        items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        items.extend(more.items())
        payload = format_message(items)
        if self._address is None:
            return False
        self._socket_of_this_process().sendto(payload, self._address)
        return True

    def close(self) -> None:
        if self._socket is not None:
            self._socket[1].close()
            self._socket = None

    def _socket_of_this_process(self) -> socket.socket:
        pid = os.getpid()
        if self._socket is not None and self._socket[0] == pid:
            return self._socket[1]
        # A copy inherited through fork is left open for the parent.
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        sock.settimeout(self.send_timeout)
        self._socket = (pid, sock)
        return sock
