"""Supervision policies with real processes: restart policy, restart
intensity, stop on exit, readiness, liveness and recycling."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from runtime_support import APPS_DIR
from runtime_support import is_running
from runtime_support import run_events

from cotyledon import WorkerEventKind
from cotyledon.core import GIVE_UP_EXIT_STATUS
from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess

StartPolicyApp = Callable[..., ManagerProcess]


@pytest.fixture
def start_policy_app(manager_process: Callable[..., ManagerProcess]) -> StartPolicyApp:
    """Start the function ``name`` of ``policy_apps.py`` as a manager."""

    def start(name: str, **kwargs: Any) -> ManagerProcess:
        return manager_process(f"policy_apps:{name}", sys_path=[APPS_DIR], **kwargs)

    return start


def _log_has(app: ManagerProcess, text: str) -> Callable[[], bool]:
    return lambda: text in app.log_text()


def test_restart_policy_finishes_services(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("restart_policy_app")
    app.wait_event("run", service="probe")

    app.wait_for(_log_has(app, "Service exit-with finished"), what="a finished service")
    app.wait_for(
        lambda: app.log_text().count("Service exit-with finished") == 2,
        what="both exit-with services to finish",
    )
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert len(run_events(app, "exit-with")) == 2
    assert status == 0


def test_restart_never_last_service_stops(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("finished_app")

    status = app.wait_exit()

    assert len(run_events(app, "exit-with")) == 2
    assert status == 0


def test_give_up_stops_manager(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("give_up_app")

    status = app.wait_exit()

    give_up = app.manager_events(ManagerEventKind.GIVE_UP)
    assert len(run_events(app, "crasher")) == 3
    assert [event.summary for event in give_up] == ["stopping: crasher 0/1 given-up, probe 1/1"]
    assert "giving it up (stop)" in app.log_text()
    assert status == GIVE_UP_EXIT_STATUS


def test_give_up_continue_keeps_probe(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("give_up_continue_app")
    app.wait_manager_event(ManagerEventKind.GIVE_UP)
    probe = app.wait_event("run", service="probe")

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert app.wait_event("terminate", service="probe").pid == probe.pid
    assert len(run_events(app, "crasher")) == 1
    assert status == 0


def test_stop_on_exit_uses_status(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("stop_on_exit_app")

    status = app.wait_exit()

    assert app.wait_event("terminate", service="probe").kind == "terminate"
    assert status == 4


def test_readiness_waits_for_notify(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("readiness_app")

    ready = app.wait_worker_ready("late-ready", 0)

    notified = app.wait_event("notify_ready", service="late-ready")
    assert ready.index > app.events.index(notified)
    app.send_signal(signal.SIGTERM)
    app.wait_exit()


def test_startup_timeout_restarts_worker(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("readiness_app")
    first = app.wait_event("run", service="never-ready")

    second = app.wait_event("run", service="never-ready", after=app.events.index(first) + 1)

    assert second.pid != first.pid
    assert "was not ready within 0.5 s; stopping it" in app.log_text()
    app.send_signal(signal.SIGTERM)
    app.wait_exit()


def test_silent_worker_is_restarted(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("heartbeat_app")
    first = app.wait_event("run", service="beater")

    app.wait_event("hang", service="beater")
    app.wait_event("terminate", service="beater")
    second = app.wait_event("run", service="beater", after=app.events.index(first) + 1)

    assert second.pid != first.pid
    assert "is hung: no heartbeat for 0.4 s; stopping it" in app.log_text()
    app.send_signal(signal.SIGTERM)
    app.wait_exit()


@pytest.mark.parametrize("stall", ["sigstop", "reload_hook"])
def test_master_stall_stops_no_beating_worker(start_policy_app: StartPolicyApp, stall: str) -> None:
    # The master does nothing for 1.5 s, past the 1 s heartbeat timeout,
    # while the workers' heartbeats wait for it in the control channel.
    env = {"HOOK_SECONDS": "1.5" if stall == "reload_hook" else "0"}
    app = start_policy_app("stalling_master_app", env=env)
    app.wait_ready()
    mark = app.mark()

    if stall == "sigstop":
        app.send_signal(signal.SIGSTOP)
        time.sleep(1.5)  # the stall itself, not a wait for a condition
        app.send_signal(signal.SIGCONT)
        app.send_signal(signal.SIGHUP)
    else:
        app.send_signal(signal.SIGHUP)
    # Once the reload is over, the master has acted on its deadlines.
    app.wait_manager_event(ManagerEventKind.RELOADED, after=mark)
    app.send_signal(signal.SIGTERM)

    assert app.wait_exit() == 0
    hung = [e for e in app.worker_events(kind=WorkerEventKind.EXITED) if e.stop_reason == "hung"]
    assert hung == []
    assert "is hung" not in app.log_text()


def test_max_age_recycles_worker(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("max_age_app")
    first = app.wait_event("run", service="probe")

    terminated = app.wait_event("terminate", service="probe")
    second = app.wait_event("run", service="probe", after=app.events.index(first) + 1)

    assert terminated.pid == first.pid
    assert second.pid != first.pid
    assert "(max-age)" in app.log_text()
    app.send_signal(signal.SIGTERM)
    app.wait_exit()


def test_rolling_reload_replaces_one_by_one(start_policy_app: StartPolicyApp) -> None:
    app = start_policy_app("rolling_app")
    app.wait_ready()
    old = {event["worker_id"]: event.pid for event in run_events(app, "rolling")}
    mark = app.mark()

    app.send_signal(signal.SIGHUP)
    reloaded = app.wait_manager_event(ManagerEventKind.RELOADED)

    for worker_id, pid in old.items():
        new = app.wait_worker_ready("rolling", worker_id, after=mark)
        retired = app.wait_event("terminate", service="rolling", after=mark, worker_id=worker_id)
        assert retired.pid == pid
        assert new.index < app.events.index(retired)
    second_start = app.worker_events("rolling", 1, after=mark)[0]
    first_exit = app.wait_worker_exited("rolling", 0, pid=old[0])
    assert first_exit.index < second_start.index
    assert reloaded.summary == "rolling 2/2"
    app.send_signal(signal.SIGTERM)
    app.wait_exit()


def test_rolling_reload_failure_keeps_old(start_policy_app: StartPolicyApp, tmp_path: Path) -> None:
    app = start_policy_app("rolling_failure_app", env={"READY_ONCE": str(tmp_path / "ready")})
    app.wait_ready()
    first = app.wait_event("run", service="ready-once")

    app.send_signal(signal.SIGHUP)
    app.wait_manager_event(ManagerEventKind.RELOADED)

    assert is_running(first.pid)
    assert app.live_workers("ready-once") == {("ready-once", 0): first.pid}
    assert first.pid not in {e.pid for e in app.events if e.kind == "terminate"}
    assert "Reload failed: a rolling replacement was not ready in time" in app.log_text()
    app.send_signal(signal.SIGTERM)
    app.wait_exit()
