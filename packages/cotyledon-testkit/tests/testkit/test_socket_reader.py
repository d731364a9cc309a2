"""SocketReader: a thread that empties a datagram socket."""

from __future__ import annotations

import select
import socket
from collections.abc import Iterator

import pytest

from cotyledon_testkit._socket_reader import SocketReader


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair of datagram sockets: the sender, then the receiver."""
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.setblocking(False)
    yield sender, receiver
    sender.close()
    receiver.close()


def _wait_readable(reader: SocketReader[bytes]) -> None:
    ready, _, _ = select.select([reader.fileno()], [], [], 10.0)
    assert ready, "nothing woke the reader's descriptor within 10 s"


def test_reader_failure_keeps_earlier_items(pair: tuple[socket.socket, socket.socket]) -> None:
    sender, receiver = pair

    def read_waiting() -> list[bytes]:
        read: list[bytes] = []
        while True:
            try:
                data = receiver.recv(100)
            except BlockingIOError:
                return read
            if data == b"boom":
                raise OSError("the socket failed")
            read.append(data)

    reader = SocketReader(receiver.fileno(), read_waiting, "test-reader")
    try:
        sender.send(b"first")
        _wait_readable(reader)
        sender.send(b"boom")
        # The thread ends at the failure.
        reader._thread.join(10.0)
        assert not reader._thread.is_alive()

        before_failure = reader.take()
        _wait_readable(reader)
        with pytest.raises(RuntimeError, match="failed to read its socket") as caught:
            reader.take()
    finally:
        reader.close()

    assert before_failure == [b"first"]
    assert isinstance(caught.value.__cause__, OSError)
