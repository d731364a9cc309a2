"""The sd_notify client against a receiver in systemd's place."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from cotyledon_systemd import InvalidNotifySocketError
from cotyledon_systemd import Notifier
from cotyledon_systemd import SystemdEnvironment
from cotyledon_systemd import _environment
from cotyledon_systemd import format_message
from cotyledon_systemd import notify
from cotyledon_systemd import notify_address
from cotyledon_testkit import NotifyReceiver


def test_notifier_sends_fields_in_one_datagram(notify_socket: NotifyReceiver) -> None:
    notifier = Notifier(notify_socket.address)

    sent = notifier.notify(READY=1, STATUS="web 2/2")
    message = notify_socket.wait_message(READY=1)
    notifier.close()

    assert sent
    assert message.payload == b"READY=1\nSTATUS=web 2/2"
    assert message.pid == os.getpid()
    assert len(notify_socket.messages) == 1


def test_notifier_reaches_abstract_socket() -> None:
    with NotifyReceiver(f"@cotyledon-test-{uuid.uuid4().hex}") as receiver:
        notifier = Notifier(receiver.address)
        notifier.notify(WATCHDOG=1)
        message = receiver.wait_message()
        notifier.close()

    assert message.fields == {"WATCHDOG": "1"}


def test_notifier_encodes_status_as_utf8(notify_socket: NotifyReceiver) -> None:
    notifier = Notifier(notify_socket.address)

    notifier.notify(STATUS="café ✓")
    message = notify_socket.wait_message()
    notifier.close()

    assert message.payload == "STATUS=café ✓".encode()
    assert message["STATUS"] == "café ✓"


def test_notifier_keeps_order_of_fields(notify_socket: NotifyReceiver) -> None:
    notifier = Notifier(notify_socket.address)

    notifier.notify({"RELOADING": 1, "MONOTONIC_USEC": 42}, STATUS="reloading")
    message = notify_socket.wait_message()
    notifier.close()

    assert message.payload == b"RELOADING=1\nMONOTONIC_USEC=42\nSTATUS=reloading"


def test_notifier_socket_is_close_on_exec(notify_socket: NotifyReceiver) -> None:
    notifier = Notifier(notify_socket.address)
    notifier.notify(WATCHDOG=1)

    assert notifier._socket is not None
    sock = notifier._socket[1]
    inheritable = os.get_inheritable(sock.fileno())
    notifier.close()

    assert not inheritable


def test_notifier_without_socket_does_nothing() -> None:
    notifier = Notifier(None)

    sent = notifier.notify(READY=1)

    assert not sent
    assert not notifier.enabled


def test_notifier_raises_without_listener(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "nobody.sock"))

    with pytest.raises(FileNotFoundError):
        notifier.notify(READY=1)
    notifier.close()


def test_notify_reads_socket_from_environment(
    notify_socket: NotifyReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.address)

    sent = notify(STATUS="one shot")
    message = notify_socket.wait_message()

    assert sent
    assert message["STATUS"] == "one shot"


def test_notify_without_environment_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)

    assert not notify(READY=1)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "set but empty"),
        ("run/notify.sock", "absolute socket path"),
        ("@", "empty name"),
        ("/" + "x" * 120, "at most 108"),
    ],
)
def test_notify_address_rejects_invalid_value(value: str, message: str) -> None:
    with pytest.raises(InvalidNotifySocketError, match=message):
        notify_address(value)


def test_notify_address_maps_abstract_name() -> None:
    assert notify_address("@name") == b"\0name"


def test_notify_address_keeps_undecodable_abstract_name() -> None:
    # os.environ decodes the byte 0xff of a name that is not UTF-8 as a
    # surrogate, as it does for a path.
    assert notify_address(os.fsdecode(b"@name\xff")) == b"\0name\xff"


@pytest.mark.parametrize("key", ["", "A=B", "A\nB", "A\rB"])
def test_format_message_rejects_bad_key(key: str) -> None:
    with pytest.raises(ValueError, match="invalid sd_notify field name"):
        format_message({key: "1"})


def test_format_message_rejects_multiline_value() -> None:
    with pytest.raises(ValueError, match="newline"):
        format_message({"STATUS": "two\nlines"})


def test_format_message_rejects_carriage_return() -> None:
    # systemd splits a message at "\n" and "\r" alike, so this would add
    # STOPPING=1 as a field of its own.
    with pytest.raises(ValueError, match="carriage return"):
        format_message({"STATUS": "bad row: ACME\rSTOPPING=1"})


def test_format_message_rejects_oversized_payload() -> None:
    header = len("READY=1\nSTATUS=")
    longest: dict[str, str | int] = {"READY": 1, "STATUS": "x" * (4095 - header)}
    too_long: dict[str, str | int] = {"READY": 1, "STATUS": "x" * (4096 - header)}

    assert len(format_message(longest)) == 4095
    with pytest.raises(ValueError, match="4096 bytes long"):
        format_message(too_long)


def test_format_message_rejects_boolean_value() -> None:
    with pytest.raises(TypeError, match="str or an int"):
        format_message({"READY": True})


def test_format_message_rejects_empty_message() -> None:
    with pytest.raises(ValueError, match="at least one"):
        format_message({})


def test_notify_uses_socket_taken_by_master(
    notify_socket: NotifyReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    taken = SystemdEnvironment({"NOTIFY_SOCKET": notify_socket.address}, os.getpid())
    monkeypatch.setattr(_environment, "_taken", taken)

    sent = notify(STATUS="from a hook")
    message = notify_socket.wait_message()

    assert sent
    assert message["STATUS"] == "from a hook"


def test_notify_ignores_socket_taken_by_parent(
    notify_socket: NotifyReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As in a forked worker: the master took the variables.
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    taken = SystemdEnvironment({"NOTIFY_SOCKET": notify_socket.address}, os.getpid() + 1)
    monkeypatch.setattr(_environment, "_taken", taken)

    assert not notify(READY=1)
