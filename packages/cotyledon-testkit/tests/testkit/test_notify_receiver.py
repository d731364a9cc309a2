"""NotifyReceiver: a notification socket in systemd's place."""

from __future__ import annotations

import array
import contextlib
import os
import socket
import threading
import time
import uuid
from pathlib import Path

import pytest
from harness_apps import NOTIFY_BURST

from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import NotifyReceiver
from cotyledon_testkit import WaitTimeoutError
from cotyledon_testkit import parse_notify_payload

HERE = Path(__file__).parent


def _send(receiver: NotifyReceiver, payload: bytes, fds: tuple[int, ...] = ()) -> None:
    address: str | bytes = receiver.address
    if receiver.address.startswith("@"):
        address = b"\0" + receiver.address[1:].encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        ancillary = []
        if fds:
            ancillary.append((socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds)))
        sender.sendmsg([payload], ancillary, 0, address)


def test_receiver_records_sender_credentials(notify_socket: NotifyReceiver) -> None:
    _send(notify_socket, b"READY=1")

    message = notify_socket.wait_message(READY=1)

    assert (message.pid, message.uid, message.gid) == (os.getpid(), os.getuid(), os.getgid())


def test_receiver_parses_key_value_lines(notify_socket: NotifyReceiver) -> None:
    _send(notify_socket, b"READY=1\n\nSTATUS=a=b\nno equals sign\n")

    message = notify_socket.wait_message()

    assert message.fields == {"READY": "1", "STATUS": "a=b"}


def test_parse_payload_keeps_last_duplicate() -> None:
    assert parse_notify_payload(b"STATUS=one\nSTATUS=two") == {"STATUS": "two"}


def test_receiver_closes_passed_descriptors(notify_socket: NotifyReceiver) -> None:
    read_end, write_end = os.pipe()
    _send(notify_socket, b"BARRIER=1", (write_end,))
    os.close(write_end)

    message = notify_socket.wait_message(BARRIER=1)
    # With every copy of the write end closed, the read end sees the end of
    # the pipe: that is what systemd-notify's barrier waits for.
    at_end = os.read(read_end, 1)
    os.close(read_end)

    assert message.fds == 1
    assert at_end == b""


def test_receiver_binds_abstract_address() -> None:
    name = f"@cotyledon-test-{uuid.uuid4().hex}"
    with NotifyReceiver(name) as receiver:
        _send(receiver, b"STATUS=abstract")
        message = receiver.wait_message()

    assert receiver.environment() == {"NOTIFY_SOCKET": name}
    assert message["STATUS"] == "abstract"


def test_receiver_rejects_relative_address() -> None:
    with pytest.raises(ValueError, match="absolute path"):
        NotifyReceiver("notify.sock")


def test_receiver_waits_for_later_message(notify_socket: NotifyReceiver) -> None:
    _send(notify_socket, b"STATUS=first")
    notify_socket.wait_message(STATUS="first")
    sender = threading.Timer(0.1, _send, (notify_socket, b"READY=1\nSTATUS=second"))

    sender.start()
    message = notify_socket.wait_message(after=1, READY=1)
    sender.join()

    assert message["STATUS"] == "second"


def test_receiver_timeout_shows_last_messages(notify_socket: NotifyReceiver) -> None:
    _send(notify_socket, b"STATUS=starting")

    with pytest.raises(WaitTimeoutError) as caught:
        notify_socket.wait_message(0.2, READY=1)

    assert "a message with READY=1" in str(caught.value)
    assert "STATUS=starting" in str(caught.value)


def test_receiver_close_removes_socket_file(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    receiver = NotifyReceiver(str(path))

    receiver.close()

    assert not path.exists()


def test_receiver_skips_closed_harness(notify_socket: NotifyReceiver) -> None:
    harness = ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE])
    with harness:
        notify_socket.attach(harness)
        harness.wait_event("ready")
    _send(notify_socket, b"STATUS=after close")

    message = notify_socket.wait_message(STATUS="after close")
    with pytest.raises(WaitTimeoutError, match="a message with READY=1"):
        notify_socket.wait_message(0.2, READY=1)

    assert harness.closed
    assert message.pid == os.getpid()


def test_harness_wait_reads_attached_receiver(notify_socket: NotifyReceiver) -> None:
    harness = ManagerProcess(
        "harness_apps:notify_burst", sys_path=[HERE], env=notify_socket.environment()
    )
    with harness:
        notify_socket.attach(harness)
        sent = harness.wait_event("sent", timeout=10)

    assert sent["failed"] == 0
    assert len(notify_socket.messages) == NOTIFY_BURST
    assert notify_socket.messages[-1]["STATUS"] == f"message {NOTIFY_BURST - 1}"


def test_closed_receiver_leaves_harness_waits() -> None:
    with ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]) as harness:
        with NotifyReceiver() as receiver:
            receiver.attach(harness)
        ready = harness.wait_event("ready")

    assert ready.pid == harness.pid


def test_receiver_reads_between_receives(notify_socket: NotifyReceiver) -> None:
    # Many more messages than the socket queues, and no receive() meanwhile.
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.settimeout(5.0)
        for index in range(200):
            sender.sendto(f"STATUS={index}".encode(), notify_socket.address)

    statuses = [message["STATUS"] for message in notify_socket.receive()]

    assert statuses == [str(index) for index in range(200)]


def test_stalled_receiver_fills_its_queue(notify_socket: NotifyReceiver) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        queued = 0
        with notify_socket.stalled():
            with contextlib.suppress(BlockingIOError):
                while queued < 10_000:
                    sender.sendto(b"STATUS=queued", notify_socket.address)
                    queued += 1
            in_block = notify_socket.receive()
        sender.settimeout(5.0)
        for _ in range(200):
            sender.sendto(b"STATUS=after", notify_socket.address)

    after = notify_socket.wait_until(lambda: len(notify_socket.find(STATUS="after")) == 200)

    assert 0 < queued < 10_000
    assert len(in_block) == queued
    assert after


def _send_until_full(receiver: NotifyReceiver, limit: int) -> int:
    """Send up to ``limit`` messages 10 ms apart, and return how many the queue took."""
    sent = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while sent < limit:
                sender.sendto(b"STATUS=queued", receiver.address)
                sent += 1
                time.sleep(0.01)
    return sent


def test_nested_stalled_blocks_stall_until_outermost(notify_socket: NotifyReceiver) -> None:
    with notify_socket.stalled():
        with notify_socket.stalled():
            pass
        queued = _send_until_full(notify_socket, 100)
        in_block = notify_socket.receive()
    after = _send_until_full(notify_socket, 100)

    assert queued < 100
    assert len(in_block) == queued
    assert after == 100


def test_wait_in_stalled_block_wakes_on_message(notify_socket: NotifyReceiver) -> None:
    def send_later() -> None:
        time.sleep(0.2)
        _send(notify_socket, b"READY=1")

    sender = threading.Thread(target=send_later)
    started = time.monotonic()
    with notify_socket.stalled():
        sender.start()
        ready = notify_socket.wait_message(5.0, READY=1)
        waited = time.monotonic() - started
        late = _send_until_full(notify_socket, 100)
    sender.join()

    assert ready.pid == os.getpid()
    assert waited < 2.0
    assert late < 100


def test_closed_receiver_rejects_waits() -> None:
    receiver = NotifyReceiver()
    receiver.close()

    with pytest.raises(ValueError, match="is closed"):
        receiver.wait_message(0.1, READY=1)
    with pytest.raises(ValueError, match="is closed"), receiver.stalled():
        pass
    assert receiver.receive() == []
