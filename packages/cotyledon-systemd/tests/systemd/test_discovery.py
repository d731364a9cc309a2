"""The entry point's factory, in the test process, with its state reset.

The test process has imported the listener, so these tests take the
entry point's full path; test_entry_point.py runs it in fresh
interpreters."""

from __future__ import annotations

import os

import pytest

from cotyledon_systemd import InvalidNotifySocketError
from cotyledon_systemd import SystemdEnvironment
from cotyledon_systemd import SystemdListener
from cotyledon_systemd import _entry_point
from cotyledon_systemd import _environment
from cotyledon_systemd import create_listener
from cotyledon_testkit import NotifyReceiver


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in a new master: nothing taken yet, no listener made yet."""
    monkeypatch.setattr(_environment, "_taken", None)
    monkeypatch.setattr(_entry_point, "_pid_without_variables", None)
    monkeypatch.setattr(SystemdListener, "_created", False)
    for name in (*_entry_point.SYSTEMD_VARIABLES, "COTYLEDON_SYSTEMD"):
        monkeypatch.delenv(name, raising=False)


def test_create_listener_takes_systemd_variables(
    monkeypatch: pytest.MonkeyPatch, notify_socket: NotifyReceiver
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.address)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")

    listener = create_listener()

    assert listener is not None
    assert listener.watchdog is not None
    assert listener.watchdog.timeout == 2.0
    assert "NOTIFY_SOCKET" not in os.environ
    assert "WATCHDOG_USEC" not in os.environ
    listener.close()


def test_create_listener_off_without_notify_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")

    listener = create_listener()

    assert listener is None
    # Taken all the same: workers inherit no systemd variable.
    assert "WATCHDOG_USEC" not in os.environ


def test_create_listener_disabled_by_variable(
    monkeypatch: pytest.MonkeyPatch, notify_socket: NotifyReceiver
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.address)
    monkeypatch.setenv("COTYLEDON_SYSTEMD", "0")

    listener = create_listener()

    assert listener is None
    assert os.environ["NOTIFY_SOCKET"] == notify_socket.address


def test_create_listener_once_per_process(
    monkeypatch: pytest.MonkeyPatch, notify_socket: NotifyReceiver
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.address)
    by_hand = SystemdListener(SystemdEnvironment({"NOTIFY_SOCKET": notify_socket.address}, 1))

    listener = create_listener()
    by_hand.close()

    assert listener is None


def test_create_listener_rejects_relative_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "run/notify.sock")

    with pytest.raises(InvalidNotifySocketError, match="absolute socket path"):
        create_listener()


def test_create_listener_again_for_next_run(
    monkeypatch: pytest.MonkeyPatch, notify_socket: NotifyReceiver
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", notify_socket.address)
    first = create_listener()
    assert first is not None
    first.close()

    second = create_listener()

    assert second is not None
    second.close()
