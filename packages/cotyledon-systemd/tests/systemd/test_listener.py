"""The systemd listener, driven by hand with status snapshots and a fake clock."""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from systemd_support import FakeTime
from systemd_support import manager
from systemd_support import service

from cotyledon import ManagerPhase
from cotyledon import ManagerStatus
from cotyledon import ReloadOutcome
from cotyledon import ServiceState
from cotyledon import SlotState
from cotyledon import WorkerEvent
from cotyledon import WorkerEventKind
from cotyledon.types import WorkerId
from cotyledon_systemd import SystemdEnvironment
from cotyledon_systemd import SystemdListener
from cotyledon_systemd._notify import SEND_TIMEOUT
from cotyledon_testkit import NotifyReceiver

READY = manager(service("web", 2, 2))
GIVEN_UP: Final = "web 0/2 given-up, mail 1/1 (40 restarts); given up: web"


_made: list[SystemdListener] = []


@pytest.fixture(autouse=True)
def _close_listeners() -> Iterator[None]:
    yield
    while _made:
        _made.pop().close()


def _listener(
    receiver: NotifyReceiver, clock: FakeTime | None = None, **variables: str
) -> SystemdListener:
    environment = SystemdEnvironment(
        {"NOTIFY_SOCKET": receiver.address, **variables}, os.getpid(), os.getppid()
    )
    listener = SystemdListener(environment, clock=clock or FakeTime())
    _made.append(listener)
    return listener


def test_listener_ready_carries_status(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)

    listener.on_ready(READY)
    message = notify_socket.wait_message(READY=1)

    assert message.payload == b"READY=1\nSTATUS=web 2/2"


def test_listener_omits_main_pid_by_default(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket, WATCHDOG_USEC="1000000", WATCHDOG_PID=str(os.getpid()))

    listener.on_ready(READY)
    message = notify_socket.wait_message(READY=1)

    assert "MAINPID" not in message


def test_listener_sends_main_pid_under_wrapper(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket, LISTEN_FDS="1", LISTEN_PID=str(os.getppid()))

    listener.on_ready(READY)
    message = notify_socket.wait_message(READY=1)

    assert message["MAINPID"] == str(os.getpid())


def test_listener_no_main_pid_for_unrelated_pid(
    notify_socket: NotifyReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    unrelated = os.getppid() + 1 if os.getppid() + 1 != os.getpid() else os.getppid() + 2
    listener = _listener(notify_socket, WATCHDOG_USEC="1000000", WATCHDOG_PID=str(unrelated))

    listener.on_ready(READY)
    message = notify_socket.wait_message(READY=1)

    assert "MAINPID" not in message
    assert listener.watchdog is None
    assert f"systemd's variables name pid {unrelated}" in caplog.text


def test_listener_rate_limits_status_updates(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock)

    for ready in [0, 1, 2] * 300:
        listener.on_status_changed(manager(service("web", ready, 2), ready=False))
    first = notify_socket.wait_message()
    clock.now += 1.0
    listener.on_liveness_tick(manager(service("web", 2, 2), ready=False))
    latest = notify_socket.wait_message(after=1)

    assert first["STATUS"] == "web 0/2"
    assert latest["STATUS"] == "web 2/2"
    assert len(notify_socket.receive()) == 0


def test_listener_skips_unchanged_status(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock)
    listener.on_status_changed(READY)
    notify_socket.wait_message()

    clock.now += 5
    listener.on_status_changed(READY)
    listener.on_liveness_tick(READY)

    assert notify_socket.receive() == []


def test_listener_status_shows_last_exit(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    crashed = manager(service("web", 1, 2, restarts=1))

    listener.on_worker_event(
        WorkerEvent(
            WorkerEventKind.EXITED,
            crashed.services[0].service_id,
            "web",
            WorkerId(1),
            1234,
            exit_code=-9,
        )
    )
    listener.on_status_changed(crashed)
    message = notify_socket.wait_message()

    assert message["STATUS"] == "web 1/2 (1 restart); last exit: web(1) was killed by SIGKILL"


def test_listener_status_ignores_requested_exit(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    web = service("web", 1, 2)

    listener.on_worker_event(
        WorkerEvent(WorkerEventKind.EXITED, web.service_id, "web", WorkerId(1), 1234, 0, "shutdown")
    )
    listener.on_status_changed(manager(web))
    message = notify_socket.wait_message()

    assert message["STATUS"] == "web 1/2"


def test_listener_status_is_one_line(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)

    listener.on_status_changed(manager(service("two\nlines", 1, 1)))
    message = notify_socket.wait_message()

    assert message["STATUS"] == "two lines 1/1"


def test_listener_reload_sends_monotonic_usec(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    listener.on_ready(READY)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000

    listener.on_reloading(READY)
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    reloading = notify_socket.wait_message(RELOADING=1)
    listener.on_reloaded(READY)
    ready = notify_socket.wait_message(after=notify_socket.messages.index(reloading) + 1)

    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    assert ready.fields == {"READY": "1", "STATUS": "web 2/2"}


def test_listener_reload_before_ready_is_quiet(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    starting = manager(service("web", 1, 2), ready=False)

    listener.on_reloading(starting)
    listener.on_reloaded(starting)
    notify_socket.wait_message()

    assert notify_socket.find(RELOADING=1) == []
    assert notify_socket.find(READY=1) == []


def test_listener_stopping_extends_stop_timeout(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)

    listener.on_stopping(manager(service("web", 2, 2), phase=ManagerPhase.STOPPING))
    message = notify_socket.wait_message(STOPPING=1)

    assert message["EXTEND_TIMEOUT_USEC"] == "5000000"
    assert message["STATUS"] == "stopping: web 2/2"


def test_listener_tick_extends_within_deadline(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    stopping = service("web", 2, 2, state=SlotState.STOPPING)

    listener.on_liveness_tick(manager(stopping, phase=ManagerPhase.STOPPING))
    message = notify_socket.wait_message()

    assert message["EXTEND_TIMEOUT_USEC"] == "5000000"


def test_listener_tick_no_extension_once_killing(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    killing = manager(service("web", 0, 2, state=SlotState.KILLING), phase=ManagerPhase.STOPPING)

    listener.on_liveness_tick(killing)
    message = notify_socket.wait_message()

    assert "EXTEND_TIMEOUT_USEC" not in message


def test_listener_tick_pings_watchdog(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock, WATCHDOG_USEC="1000000")
    listener.on_ready(READY)

    listener.on_liveness_tick(READY)
    listener.on_liveness_tick(READY)
    clock.now += 0.5
    listener.on_liveness_tick(READY)
    notify_socket.wait_message(after=2, WATCHDOG=1)

    assert listener.liveness_interval() == 0.5
    assert [m.payload for m in notify_socket.messages[1:]] == [b"WATCHDOG=1", b"WATCHDOG=1"]


def test_listener_stops_pings_for_down_service(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock, WATCHDOG_USEC="1000000")
    listener.on_ready(READY)
    down = manager(service("web", 0, 2))
    listener.on_status_changed(down)

    clock.now += 1.5
    listener.on_liveness_tick(down)
    message = notify_socket.wait_message(after=1)

    assert "WATCHDOG" not in message
    assert message["STATUS"] == (
        "web 0/2; no watchdog pings: no lasting ready worker in web for over 1 s"
    )


def test_listener_without_watchdog_idles(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)

    assert listener.liveness_interval() is None
    assert listener.watchdog is None


def test_listener_ticks_for_held_status(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock)
    listener.on_status_changed(manager(service("web", 1, 2)))
    notify_socket.wait_message()
    mark = len(notify_socket.messages)

    listener.on_status_changed(manager(service("web", 2, 2)))
    held = listener.liveness_interval()
    clock.now += 1.0
    listener.on_liveness_tick(manager(service("web", 2, 2)))
    message = notify_socket.wait_message(after=mark)

    assert held == 1.0
    assert message["STATUS"] == "web 2/2"
    assert listener.liveness_interval() is None


def test_listener_ticks_while_stopping(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    stopping = manager(service("web", 2, 2, state=SlotState.STOPPING), phase=ManagerPhase.STOPPING)

    listener.on_stopping(stopping)

    assert listener.liveness_interval() == 1.0


def _given_up(mail_ready: int = 1, phase: ManagerPhase = ManagerPhase.RUNNING) -> ManagerStatus:
    web = service("web", 0, 2, restarts=40, service_state=ServiceState.GIVEN_UP)
    return manager(web, service("mail", mail_ready, 1, pid=2000), phase=phase)


def test_listener_give_up_sends_status_at_once(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock)
    listener.on_status_changed(manager(service("web", 0, 2), service("mail", 1, 1, pid=2000)))
    notify_socket.wait_message()

    # The last STATUS is less than a status interval old, and yet the
    # give-up is not held back.
    clock.now += 0.1
    listener.on_give_up(_given_up())
    message = notify_socket.wait_message(after=1)

    assert message.fields == {"STATUS": GIVEN_UP}


def test_listener_status_keeps_given_up_service(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock)
    listener.on_give_up(_given_up())
    notify_socket.wait_message()

    listener.on_status_changed(_given_up(mail_ready=0))
    clock.now += 1.0
    listener.on_liveness_tick(_given_up(mail_ready=0))
    later = notify_socket.wait_message(after=1)
    listener.on_stopping(_given_up(mail_ready=0, phase=ManagerPhase.STOPPING))
    stopping = notify_socket.wait_message(after=2)

    assert later["STATUS"] == "web 0/2 given-up, mail 0/1 (40 restarts); given up: web"
    assert stopping["STATUS"] == (
        "stopping: web 0/2 given-up, mail 0/1 (40 restarts); given up: web"
    )


def test_listener_give_up_sends_no_trigger(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket, WATCHDOG_USEC="1000000")
    listener.on_ready(READY)

    listener.on_give_up(_given_up())
    listener.on_stopping(_given_up(phase=ManagerPhase.STOPPING))
    notify_socket.wait_message(STOPPING=1)

    assert notify_socket.find(WATCHDOG="trigger") == []


def test_listener_trigger_watchdog_sends_trigger(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)

    listener.trigger_watchdog("queue stuck\nfor 60 s")
    message = notify_socket.wait_message()

    assert message.fields == {"WATCHDOG": "trigger", "STATUS": "queue stuck for 60 s"}


def test_listener_survives_missing_socket(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    environment = SystemdEnvironment({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}, os.getpid())
    listener = SystemdListener(environment, clock=FakeTime())

    listener.on_ready(READY)
    listener.on_stopping(manager(service("web", 2, 2), phase=ManagerPhase.STOPPING))
    listener.close()

    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert "sd_notify to" in warnings[0].getMessage()


def test_listener_ping_gap_stays_half_timeout(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock, WATCHDOG_USEC="4000000")
    listener.on_ready(READY)
    notify_socket.wait_message(READY=1)
    ping_times = []
    for _ in range(10):
        # Another listener's tick, or one for a held status, comes just
        # before the ping is due and sends none. The master then ticks
        # again after the interval that this listener returns.
        for early in (True, False):
            delay = 1.7 if early else listener.liveness_interval()
            assert delay is not None
            clock.now += delay
            listener.on_liveness_tick(READY)
            if any("WATCHDOG" in message for message in notify_socket.receive()):
                ping_times.append(clock.now)
    gaps = [later - earlier for earlier, later in itertools.pairwise(ping_times)]

    assert len(ping_times) >= 9
    assert max(gaps) <= 2.0 + 1e-9


def test_listener_caps_huge_watchdog_interval(notify_socket: NotifyReceiver) -> None:
    # 58 days: half of it is longer than epoll_wait(2) can wait.
    listener = _listener(notify_socket, WATCHDOG_USEC="5000000000000")
    interval = listener.liveness_interval()

    assert interval is not None
    assert interval <= (2**31 - 1) / 1000


def test_listener_floors_tiny_watchdog_interval(
    notify_socket: NotifyReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock, WATCHDOG_USEC="1")
    listener.on_liveness_tick(READY)
    notify_socket.wait_message(WATCHDOG=1)
    interval = listener.liveness_interval()

    assert interval is not None
    assert interval == pytest.approx(0.05)
    assert any("WATCHDOG_USEC=1 is below" in r.getMessage() for r in caplog.records)


def _fill_queue(receiver: NotifyReceiver) -> None:
    """Send to ``receiver`` until its queue is full, as a stalled systemd's."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                sender.sendto(b"FILLER=1", receiver.address)


def test_listener_resends_lifecycle_after_full_queue(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    listener.on_ready(READY)
    with notify_socket.stalled():
        _fill_queue(notify_socket)

        started = time.monotonic()
        listener.on_reloading(READY)
        listener.on_reloaded(READY)
        blocked = time.monotonic() - started
        notify_socket.receive()
        listener.on_liveness_tick(READY)
        resent = [message for message in notify_socket.receive() if "FILLER" not in message]

    assert blocked < SEND_TIMEOUT
    assert [sorted(message.fields) for message in resent] == [
        ["MONOTONIC_USEC", "RELOADING"],
        ["READY"],
    ]
    assert listener.liveness_interval() is None


def test_listener_drops_ready_after_stopping(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    stopping = manager(service("web", 2, 2, state=SlotState.STOPPING), phase=ManagerPhase.STOPPING)
    with notify_socket.stalled():
        _fill_queue(notify_socket)

        listener.on_ready(READY)
        listener.on_stopping(stopping)
        notify_socket.receive()
        listener.on_liveness_tick(stopping)
        resent = [message for message in notify_socket.receive() if "FILLER" not in message]

    assert notify_socket.find(READY=1) == []
    assert resent[0].fields == {"STOPPING": "1"}
    assert resent[1]["STATUS"] == "stopping: web 2/2"


def test_listener_extends_only_for_stop_deadlines(notify_socket: NotifyReceiver) -> None:
    clock = FakeTime()
    listener = _listener(notify_socket, clock)
    stopping = ManagerPhase.STOPPING
    listener.on_stopping(manager(service("web", 2, 2, state=SlotState.STOPPING), phase=stopping))

    # The status changes, and the stopping workers have no deadline.
    clock.now += 2
    listener.on_liveness_tick(
        manager(service("web", 1, 2, state=SlotState.STOPPING, kill_in=None), phase=stopping)
    )
    without_deadline = notify_socket.wait_message(after=1)

    assert notify_socket.messages[0]["EXTEND_TIMEOUT_USEC"] == "5000000"
    assert "EXTEND_TIMEOUT_USEC" not in without_deadline


def test_listener_long_status_keeps_notes(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)
    services = [service(f"service-{index:03d}-" + "x" * 80, 1, 1, pid=index) for index in range(12)]
    crasher = service("crasher", 0, 1, service_state=ServiceState.GIVEN_UP, pid=5000)

    text = listener.status_text(manager(*services, crasher))

    assert len(text) <= 1000
    assert text.endswith("\u2026; given up: crasher")
    assert text.startswith("service-000-")


@pytest.mark.parametrize(
    ("outcome", "note"),
    [
        (ReloadOutcome.FAILED, "; last reload failed: a rolling replacement was not ready in time"),
        (ReloadOutcome.CANCELLED, "; last reload cancelled by a hook"),
        (ReloadOutcome.DONE, ""),
    ],
)
def test_listener_reload_outcome_in_status(
    notify_socket: NotifyReceiver, outcome: ReloadOutcome, note: str
) -> None:
    listener = _listener(notify_socket)
    listener.on_ready(READY)
    listener.on_reloading(READY)
    reloading = notify_socket.wait_message(RELOADING=1)

    listener.on_reloaded(manager(service("web", 2, 2), last_reload=outcome))
    after = notify_socket.messages.index(reloading) + 1
    message = notify_socket.wait_message(READY=1, after=after)

    assert message["STATUS"] == "web 2/2" + note


def test_listener_longest_messages_fit_systemd(notify_socket: NotifyReceiver) -> None:
    # Four UTF-8 bytes per character, in the longest status line.
    listener = _listener(notify_socket, LISTEN_FDS="1", LISTEN_PID=str(os.getppid()))
    wide = manager(service("\U0001f600" * 2000, 1, 1))

    listener.on_ready(wide)
    listener.on_reloading(wide)
    listener.on_stopping(manager(wide.services[0], phase=ManagerPhase.STOPPING))
    messages = [
        notify_socket.wait_message(**fields)
        for fields in ({"READY": 1}, {"RELOADING": 1}, {"STOPPING": 1})
    ]

    assert all(len(message.payload) <= 4095 for message in messages)


def test_listener_reload_across_first_ready(notify_socket: NotifyReceiver) -> None:
    listener = _listener(notify_socket)

    listener.on_reloading(manager(service("web", 1, 2), ready=False))
    listener.on_ready(READY)
    listener.on_reloaded(READY)
    notify_socket.wait_message(READY=1)
    notify_socket.receive()

    assert len(notify_socket.find(READY=1)) == 1
    assert notify_socket.find(RELOADING=1) == []
