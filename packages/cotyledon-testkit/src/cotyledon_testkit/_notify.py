"""A notification socket that plays systemd's part in tests.

Code under test sends sd_notify messages (``READY=1``, ``STATUS=...``) to
the socket that ``NOTIFY_SOCKET`` names. A ``NotifyReceiver`` binds such a
socket, records each message with the sender's credentials, and lets a
test wait for a given message.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import struct
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final
from typing import TypeVar
from typing import final

import attrs

from cotyledon_testkit._harness import DEFAULT_TIMEOUT
from cotyledon_testkit._harness import ManagerProcess
from cotyledon_testkit._harness import WaitTimeoutError
from cotyledon_testkit._owned_dir import OwnedTemporaryDirectory
from cotyledon_testkit._socket_path import check_socket_path
from cotyledon_testkit._socket_reader import SocketReader

T = TypeVar("T")

NOTIFY_SOCKET_ENV: Final = "NOTIFY_SOCKET"

_MAX_PAYLOAD: Final = 65536
# struct ucred of SCM_CREDENTIALS: pid_t pid, uid_t uid, gid_t gid.
_UCRED: Final = struct.Struct("iII")
# SCM_MAX_FD of Linux: the most descriptors one message can carry; the
# kernel closes those that do not fit in the buffer.
_MAX_FDS: Final = 253
_ANCILLARY_SIZE: Final = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(_MAX_FDS * 4)
_RECENT: Final = 20


@attrs.frozen
class NotifyMessage:
    """One datagram received on the notification socket."""

    payload: bytes
    fields: dict[str, str]
    """Its ``KEY=VALUE`` lines; a key given twice keeps its last value."""
    pid: int | None
    """The sender's pid, from SCM_CREDENTIALS (None if none came)."""
    uid: int | None
    gid: int | None
    fds: int
    """How many descriptors came with it; the receiver closed them."""
    time: float
    """``time.monotonic()`` when the receiver read it."""

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def __contains__(self, key: object) -> bool:
        return key in self.fields

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.fields.get(key, default)

    def matches(self, **fields: object) -> bool:
        """True when each of ``fields`` is in the message with that value
        (compared as text: ``READY=1`` matches ``READY=1`` and ``READY="1"``)."""
        return all(self.fields.get(key) == str(value) for key, value in fields.items())


def parse_notify_payload(payload: bytes) -> dict[str, str]:
    """Split a payload into its ``KEY=VALUE`` fields.

    Lines are separated by newlines; empty lines and lines without ``=``
    are skipped; invalid UTF-8 is replaced.
    """
    fields = {}
    for line in payload.decode("utf-8", errors="replace").split("\n"):
        key, sep, value = line.partition("=")
        if sep and key:
            fields[key] = value
    return fields


@final
class NotifyReceiver:
    """A Unix datagram socket that records sd_notify messages.

    ``address`` is the value of ``NOTIFY_SOCKET``: an absolute path, or
    ``@name`` for a socket in the abstract namespace. By default the socket
    is a file in a new temporary directory. An address too long for a Unix
    socket raises OSError (ENAMETOOLONG). Credentials of the sender are
    asked for (SO_PASSCRED), and descriptors passed with a message
    (SCM_RIGHTS, as in ``systemd-notify``'s ``BARRIER=1``) are closed at
    once, so that a sender waiting for them returns. systemd does the same:
    sd_notify(3) says that descriptors sent "on messages that do not expect
    them (i.e. without "FDSTORE=1") [...] are immediately closed on
    reception."
    """

    def __init__(self, address: str | None = None) -> None:
        self._dir: OwnedTemporaryDirectory | None = None
        self._owner_pid = os.getpid()
        fix = "pass a shorter address"
        if address is None:
            # Short names, so that the path fits under a long TMPDIR.
            self._dir = OwnedTemporaryDirectory(prefix="cotyledon-")
            address = str(Path(self._dir.name) / "notify")
            fix = "set TMPDIR to a shorter directory, such as /tmp, or pass an address"
        if address.startswith("@") and len(address) > 1:
            bind_to: str | bytes = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            bind_to = address
        else:
            raise ValueError(
                f"invalid notification socket address {address!r}: expected an absolute path "
                "or '@name'"
            )
        try:
            # For '@name' the NUL that replaces '@' counts as one byte too.
            check_socket_path(address, "the notification socket", fix)
        except BaseException:
            if self._dir is not None:
                self._dir.cleanup()
            raise
        self.address = address
        self.messages: list[NotifyMessage] = []
        self._attached: list[ManagerProcess] = []
        self._reader: SocketReader[NotifyMessage] | None = None
        self._bound = False
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        try:
            self._socket.bind(bind_to)
            self._bound = True
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            self._socket.setblocking(False)
            self._reader = SocketReader(
                self._socket.fileno(), self._read_waiting, "notify-receiver"
            )
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"<NotifyReceiver {self.address!r} messages={len(self.messages)}>"

    def __enter__(self) -> NotifyReceiver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def environment(self) -> dict[str, str]:
        """``{"NOTIFY_SOCKET": address}``, for the environment of a child."""
        return {NOTIFY_SOCKET_ENV: self.address}

    def fileno(self) -> int:
        """Return the descriptor that is readable while messages wait for
        ``receive()``; raise ValueError once the receiver is closed."""
        return self._open_reader().fileno()

    def receive(self) -> list[NotifyMessage]:
        """Return the messages that arrived since the last call, without
        waiting, and add them to ``messages``."""
        if self._reader is None:
            return []
        new = self._reader.take()
        self.messages.extend(new)
        return new

    @contextlib.contextmanager
    def stalled(self) -> Iterator[None]:
        """Within the block, read the socket only in ``receive()`` and the
        waits, as a systemd that has stopped reading would.

        The socket's queue then fills (10 datagrams with Linux's default
        ``net.unix.max_dgram_qlen``), and a sender waits or gives up, as
        cotyledon-systemd's client does after its send timeout. Blocks may
        nest: the thread reads again when the outermost one ends.
        """
        self._open_reader().pause()
        try:
            yield
        finally:
            if self._reader is not None:
                self._reader.resume()

    def _open_reader(self) -> SocketReader[NotifyMessage]:
        if self._reader is None:
            raise ValueError(f"{self!r} is closed")
        return self._reader

    def _read_waiting(self) -> list[NotifyMessage]:
        read: list[NotifyMessage] = []
        while True:
            try:
                data, ancillary, _, _ = self._socket.recvmsg(
                    _MAX_PAYLOAD, _ANCILLARY_SIZE, socket.MSG_CMSG_CLOEXEC
                )
            except BlockingIOError:
                return read
            read.append(self._message(data, ancillary))

    def attach(self, harness: ManagerProcess) -> None:
        """Wake the waits here on the events of ``harness``, and the waits of
        ``harness`` on the messages of this socket.

        Attach the managers that send to this socket, so that
        ``wait_until`` can await a condition on their events as well as on
        the messages, and their waits a condition on the messages.
        """
        if harness in self._attached:
            return
        self._attached.append(harness)
        harness._read_while_waiting(self)

    def find(self, *, after: int = 0, **fields: object) -> list[NotifyMessage]:
        """Return the messages received so far, from index ``after``, that
        match ``fields`` (see ``NotifyMessage.matches``)."""
        return [message for message in self.messages[after:] if message.matches(**fields)]

    def wait_until(
        self,
        condition: Callable[[], T | None],
        timeout: float = DEFAULT_TIMEOUT,
        what: str = "the condition",
    ) -> T:
        """Wait until ``condition()`` returns a true value; return it.

        The condition is checked after each batch of messages, and of
        events of the attached harnesses: the wait selects on their
        sockets, with no polling. Harnesses closed since they were attached
        are skipped. On timeout, raises ``WaitTimeoutError`` that names
        ``what`` and shows the last messages; on a closed receiver,
        ValueError.
        """
        self._open_reader()
        deadline = time.monotonic() + timeout
        while True:
            self.receive()
            harnesses = [harness for harness in self._attached if not harness.closed]
            for harness in harnesses:
                harness.receive()
            result = condition()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeoutError(self._describe_timeout(what, timeout))
            # Each is readable while messages or events wait to be received.
            channels = [harness._channel.fileno() for harness in harnesses]
            select.select([self.fileno(), *channels], [], [], remaining)

    def wait_for(
        self,
        condition: Callable[[NotifyMessage], bool],
        timeout: float = DEFAULT_TIMEOUT,
        *,
        after: int = 0,
        what: str = "a message",
    ) -> NotifyMessage:
        """Wait for the first message from index ``after`` that satisfies
        ``condition``; return it (see ``wait_until``)."""
        checked = after

        def first_match() -> NotifyMessage | None:
            nonlocal checked
            for message in self.messages[checked:]:
                if condition(message):
                    return message
            checked = max(checked, len(self.messages))
            return None

        return self.wait_until(first_match, timeout, what)

    def wait_message(
        self, timeout: float = DEFAULT_TIMEOUT, *, after: int = 0, **fields: object
    ) -> NotifyMessage:
        """Wait for a message that matches ``fields``, from index ``after``.

        ``receiver.wait_message(READY=1)`` returns the first message with
        ``READY=1``; pass ``after=len(receiver.messages)`` to wait for a
        new one.
        """
        described = " ".join(f"{key}={value}" for key, value in fields.items()) or "any"
        return self.wait_for(
            lambda message: message.matches(**fields),
            timeout,
            after=after,
            what=f"a message with {described}",
        )

    def close(self) -> None:
        """Close the socket, and remove its file in the process that made it only."""
        for harness in self._attached:
            harness._stop_reading(self)
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._socket.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None
        elif self._bound and self.address.startswith("/") and os.getpid() == self._owner_pid:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.address)

    def _message(self, data: bytes, ancillary: list[tuple[int, int, bytes]]) -> NotifyMessage:
        pid = uid = gid = None
        fds = 0
        for level, kind, value in ancillary:
            if level != socket.SOL_SOCKET:
                continue
            if kind == socket.SCM_CREDENTIALS and len(value) >= _UCRED.size:
                pid, uid, gid = _UCRED.unpack_from(value)
            elif kind == socket.SCM_RIGHTS:
                count = len(value) // 4
                for fd in struct.unpack(f"{count}i", value[: count * 4]):
                    os.close(fd)
                fds += count
        return NotifyMessage(data, parse_notify_payload(data), pid, uid, gid, fds, time.monotonic())

    def _describe_timeout(self, what: str, timeout: float) -> str:
        recent = "\n".join(
            f"  pid={message.pid} {message.payload!r}" for message in self.messages[-_RECENT:]
        )
        return (
            f"timed out after {timeout} s waiting for {what} on {self!r}\n"
            f"last messages:\n{recent or '  (none)'}"
        )
