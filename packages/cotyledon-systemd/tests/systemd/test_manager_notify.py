"""Real managers that report to a notification socket in systemd's place.

The systemd listener comes in through its entry point, as in production;
the testkit's harness listener reports the same lifecycle on its channel,
which tells the order of things.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from systemd_support import StartApp

from cotyledon import WorkerEventKind
from cotyledon_systemd import SYSTEMD_VARIABLES
from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import NotifyMessage
from cotyledon_testkit import NotifyReceiver
from cotyledon_testkit import ProbeEvent
from cotyledon_testkit import WaitTimeoutError


def _monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def _pings(receiver: NotifyReceiver, count: int, *, after: int = 0) -> list[NotifyMessage]:
    """Wait until ``count`` watchdog pings have come from index ``after`` on;
    return them."""

    def enough() -> list[NotifyMessage] | None:
        found = receiver.find(after=after, WATCHDOG=1)
        return found[:count] if len(found) >= count else None

    return receiver.wait_until(enough, what=f"{count} messages WATCHDOG=1")


def _runs(receiver: NotifyReceiver, app: ManagerProcess, count: int) -> list[ProbeEvent]:
    """Wait until ``count`` workers of ``app`` have reported ``run``."""

    def enough() -> list[ProbeEvent] | None:
        runs = [event for event in app.events if event.kind == "run"]
        return runs[:count] if len(runs) >= count else None

    return receiver.wait_until(enough, timeout=30, what=f"{count} run events")


def test_manager_ready_after_every_worker(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified("notify_app")

    ready = notify_socket.wait_message(READY=1)
    # The harness's events were sent before READY=1, by the same master.
    app.receive()

    assert ready.pid == app.pid
    assert ready["STATUS"] == "web 2/2, mail 1/1"
    assert [e.kind for e in app.events].count("worker_ready") == 3


def _give_up_web(app: ManagerProcess, receiver: NotifyReceiver, flag: Path) -> NotifyMessage:
    """Give the web service of a give-up app up once the manager is ready;
    return the first message whose status names it given up.

    Waiting for READY=1 first makes the status deterministic: mail's worker
    is ready, and web's first worker was ready before it was killed.
    """
    receiver.wait_message(READY=1)
    flag.touch()
    app.signal_worker("web", 0, signal.SIGKILL)
    return receiver.wait_for(
        lambda m: "given up: web" in m.fields.get("STATUS", ""), what="a status with web given up"
    )


def test_manager_give_up_stops_gracefully(
    start_notified: StartApp, notify_socket: NotifyReceiver, tmp_path: Path
) -> None:
    flag = tmp_path / "crash"
    app = start_notified("give_up_stop_app", CRASH_FLAG=str(flag))

    given_up = _give_up_web(app, notify_socket, flag)
    status = app.wait_exit()
    notify_socket.receive()
    stopping = notify_socket.find(STOPPING=1)
    mail = app.worker_events("mail", kind=WorkerEventKind.EXITED)

    assert given_up.pid == app.pid
    assert given_up.fields == {
        "STATUS": "stopping: web 0/1 given-up, mail 1/1; given up: web; "
        "last exit: web(0) exited with status 1"
    }
    assert len(stopping) == 1
    assert notify_socket.messages.index(stopping[0]) > notify_socket.messages.index(given_up)
    assert "given up: web" in stopping[0]["STATUS"]
    assert notify_socket.find(WATCHDOG="trigger") == []
    assert [(event.exit_code, event.stop_reason) for event in mail] == [(0, "shutdown")]
    assert status == 70


def test_manager_give_up_continue_keeps_pinging(
    start_notified: StartApp, notify_socket: NotifyReceiver, tmp_path: Path
) -> None:
    flag = tmp_path / "crash"
    app = start_notified("give_up_continue_app", CRASH_FLAG=str(flag), WATCHDOG_USEC="1000000")
    mail_pid = app.wait_worker_ready("mail", 0).pid

    given_up = _give_up_web(app, notify_socket, flag)
    after_give_up = notify_socket.messages.index(given_up) + 1
    # Pings are at least 0.45 s apart, so five span more than the 1 s
    # watchdog timeout. A given-up service counted as down would have
    # stopped them.
    _pings(notify_socket, 5, after=after_give_up)
    statuses = [m["STATUS"] for m in notify_socket.find(after=after_give_up) if "STATUS" in m]
    mail = app.live_workers("mail")
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert given_up.fields == {
        "STATUS": "web 0/1 given-up, mail 1/1 (1 restart); given up: web; "
        "last exit: web(0) exited with status 1"
    }
    assert [text for text in statuses if "given up: web" not in text] == []
    assert mail == {("mail", 0): mail_pid}
    assert notify_socket.find(WATCHDOG="trigger") == []
    assert status == 0


def test_manager_status_shows_worker_exit(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified("notify_app")
    notify_socket.wait_message(READY=1)
    expected = "web 2/2, mail 1/1 (1 restart); last exit: web(1) was killed by SIGKILL"

    app.signal_worker("web", 1, signal.SIGKILL)
    message = notify_socket.wait_message(STATUS=expected)

    assert message.pid == app.pid


def test_manager_reload_sends_reloading_then_ready(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified("notify_app")
    notify_socket.wait_message(READY=1)
    mark = len(notify_socket.messages)
    before = _monotonic_usec()

    app.send_signal(signal.SIGHUP)
    reloading = notify_socket.wait_message(after=mark, RELOADING=1)
    received = _monotonic_usec()
    ready = notify_socket.wait_message(after=notify_socket.messages.index(reloading), READY=1)
    app.receive()

    assert before <= int(reloading["MONOTONIC_USEC"]) <= received
    assert ready["STATUS"] == "web 2/2, mail 1/1"
    assert [e.kind for e in app.events].count("reload") == 2


def test_manager_stop_sends_stopping_once(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified("notify_app")
    notify_socket.wait_message(READY=1)

    app.send_signal(signal.SIGTERM)
    stopping = notify_socket.wait_message(STOPPING=1)
    status = app.wait_exit()
    notify_socket.receive()

    assert stopping["STATUS"] == "stopping: web 2/2, mail 1/1"
    assert len(notify_socket.find(STOPPING=1)) == 1
    assert len(notify_socket.find(READY=1)) == 1
    assert status == 0


def test_manager_extends_stop_within_deadline(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified("slow_stop_app", WATCHDOG_USEC="1000000")
    notify_socket.wait_message(READY=1)

    app.send_signal(signal.SIGTERM)
    stopping = notify_socket.wait_message(STOPPING=1)
    extension = notify_socket.wait_for(
        lambda m: "EXTEND_TIMEOUT_USEC" in m and "STOPPING" not in m,
        after=notify_socket.messages.index(stopping),
        what="an EXTEND_TIMEOUT_USEC from a liveness tick",
    )
    status = app.wait_exit()

    assert stopping["EXTEND_TIMEOUT_USEC"] == "5000000"
    assert extension.pid == app.pid
    assert status == 0


def test_manager_pings_watchdog_every_half_timeout(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    started = time.monotonic()
    app = start_notified("notify_app", WATCHDOG_USEC="1000000")

    pings = _pings(notify_socket, 4)

    # Receipt times tell when the test read a ping, not when the master
    # sent it, so only the total can be checked: three intervals of at
    # least 0.45 s lie between the first ping and the fourth.
    assert pings[3].time - started >= 3 * 0.45
    assert {ping.pid for ping in pings} == {app.pid}


def test_manager_pings_after_claiming_main_pid(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    # The test process plays the wrapper that started the master, which
    # claims MAINPID=.
    app = start_notified("notify_app", WATCHDOG_USEC="400000", WATCHDOG_PID=str(os.getpid()))
    ready = notify_socket.wait_message(READY=1)
    ping = notify_socket.wait_message(WATCHDOG=1)

    assert ready["MAINPID"] == str(app.pid)
    assert ping.pid == app.pid


def test_manager_watchdog_off_for_other_pid(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified(
        "notify_app",
        WATCHDOG_USEC="400000",
        WATCHDOG_PID=str(os.getpid()),
        LISTEN_FDS="1",
        LISTEN_PID="2",
    )
    ready = notify_socket.wait_message(READY=1)

    app.send_signal(signal.SIGTERM)
    app.wait_exit()
    notify_socket.receive()

    # The first liveness tick comes as the loop starts: a watchdog that
    # applied would have pinged by now.
    assert notify_socket.find(WATCHDOG=1) == []
    assert "MAINPID" not in ready
    assert "no watchdog pings" in app.log_text()


def test_manager_stops_pings_while_service_down(
    start_notified: StartApp, notify_socket: NotifyReceiver, tmp_path: Path
) -> None:
    flag = tmp_path / "crash"
    app = start_notified("crash_on_flag_app", WATCHDOG_USEC="1000000", CRASH_FLAG=str(flag))
    notify_socket.wait_message(READY=1)
    notify_socket.wait_message(WATCHDOG=1)

    flag.touch()
    app.signal_worker("web", 0, signal.SIGKILL)
    failing = notify_socket.wait_for(
        lambda m: "no watchdog pings" in m.fields.get("STATUS", ""), what="the watchdog note"
    )
    after_failing = notify_socket.messages.index(failing) + 1
    with pytest.raises(WaitTimeoutError):
        notify_socket.wait_message(1.5, after=after_failing, WATCHDOG=1)
    flag.unlink()
    resumed = notify_socket.wait_message(after=after_failing, WATCHDOG=1)

    assert "no lasting ready worker in web for over 1 s" in failing["STATUS"]
    assert resumed.pid == app.pid


@pytest.mark.parametrize("app_name", ["fork_app", "spawn_app", "forkserver_app"])
def test_workers_never_inherit_systemd_variables(
    start_notified: StartApp, notify_socket: NotifyReceiver, app_name: str
) -> None:
    app = start_notified(
        app_name, WATCHDOG_USEC="60000000", LISTEN_FDS="1", LISTEN_PID="1", LISTEN_FDNAMES="web"
    )

    runs = _runs(notify_socket, app, 2)

    assert [run["env"] for run in runs] == [dict.fromkeys(SYSTEMD_VARIABLES)] * 2
    assert notify_socket.wait_message(READY=1).pid == app.pid


def test_disabled_discovery_leaves_environment_alone(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified("notify_app", COTYLEDON_SYSTEMD="0")
    runs = _runs(notify_socket, app, 3)

    app.send_signal(signal.SIGTERM)
    app.wait_exit()

    assert {run["env"]["NOTIFY_SOCKET"] for run in runs} == {notify_socket.address}
    assert notify_socket.receive() == []


def test_manager_without_discovery_sends_nothing(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified("no_discovery_app")
    _runs(notify_socket, app, 1)

    app.send_signal(signal.SIGTERM)
    app.wait_exit()

    assert notify_socket.receive() == []


def test_explicit_listener_is_not_doubled(
    start_notified: StartApp, notify_socket: NotifyReceiver
) -> None:
    app = start_notified("explicit_listener_app")
    notify_socket.wait_message(READY=1)

    app.send_signal(signal.SIGTERM)
    app.wait_exit()
    notify_socket.receive()

    assert len(notify_socket.find(READY=1)) == 1
    assert len(notify_socket.find(STOPPING=1)) == 1
