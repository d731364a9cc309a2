"""systemd-notify, systemd's own client, as the reference for messages.

What ``systemd-notify`` sends is read by the same receiver as this
package's messages; the two must agree field for field.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from cotyledon_systemd import InvalidNotifySocketError
from cotyledon_systemd import Notifier
from cotyledon_systemd import notify_address
from cotyledon_testkit import NotifyMessage
from cotyledon_testkit import NotifyReceiver

SYSTEMD_NOTIFY = shutil.which("systemd-notify")

pytestmark = pytest.mark.skipif(
    SYSTEMD_NOTIFY is None, reason="systemd-notify is not installed (Debian package systemd)"
)


def _systemd_notify(receiver: NotifyReceiver, *args: str) -> tuple[NotifyMessage, int]:
    """Run systemd-notify against ``receiver``; return its first message and
    its exit status.

    Unless told ``--no-block``, systemd-notify then sends ``BARRIER=1`` with a
    descriptor and waits until the receiver has closed it.
    """
    assert SYSTEMD_NOTIFY is not None
    mark = len(receiver.messages)
    process = subprocess.Popen(
        [SYSTEMD_NOTIFY, *args],
        env={**os.environ, **receiver.environment()},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        first = receiver.wait_message(after=mark)
        receiver.wait_message(after=mark, BARRIER=1)
        _, stderr = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr.decode(errors="replace")
    return first, process.returncode


def test_systemd_notify_sends_ready_and_status(notify_socket: NotifyReceiver) -> None:
    message, status = _systemd_notify(notify_socket, "--ready", "--status=hello")

    assert message.payload == b"READY=1\nSTATUS=hello"
    assert message.fields == {"READY": "1", "STATUS": "hello"}
    # It speaks for the script that called it: the credentials carry its
    # parent's pid.
    assert message.pid == os.getpid()
    assert status == 0


def test_systemd_notify_matches_package_message(notify_socket: NotifyReceiver) -> None:
    reference, _ = _systemd_notify(notify_socket, "--ready", "--status=web 2/2")
    notifier = Notifier(notify_socket.address)
    mark = len(notify_socket.messages)

    notifier.notify(READY=1, STATUS="web 2/2")
    ours = notify_socket.wait_message(after=mark)
    notifier.close()

    assert ours.payload == reference.payload
    assert ours.fields == reference.fields


def test_systemd_notify_passes_extra_fields(notify_socket: NotifyReceiver) -> None:
    message, _ = _systemd_notify(notify_socket, "RELOADING=1", "MONOTONIC_USEC=123")

    assert message.fields == {"RELOADING": "1", "MONOTONIC_USEC": "123"}


def test_systemd_notify_barrier_descriptor_is_closed(notify_socket: NotifyReceiver) -> None:
    _, status = _systemd_notify(notify_socket, "--ready")

    barrier = notify_socket.find(BARRIER=1)

    assert status == 0
    assert [message.fds for message in barrier] == [1]
    assert not notify_socket.find(ERRNO=110)


def test_systemd_notify_reaches_abstract_socket() -> None:
    with NotifyReceiver(f"@cotyledon-test-{uuid.uuid4().hex}") as receiver:
        message, _ = _systemd_notify(receiver, "--status=abstract")

    assert message.fields == {"STATUS": "abstract"}


def test_notify_address_refuses_like_reference() -> None:
    assert SYSTEMD_NOTIFY is not None
    reference = subprocess.run(
        [SYSTEMD_NOTIFY, "--ready"],
        env={**os.environ, "NOTIFY_SOCKET": "run/notify.sock"},
        capture_output=True,
        timeout=15,
        check=False,
    )

    with pytest.raises(InvalidNotifySocketError):
        notify_address("run/notify.sock")
    assert reference.returncode == 1
