"""oslo.service's threading launcher on this project's cotyledon.

Run by `make oslo-service`, in the environment where oslo.service is
installed: each test starts a program of oslo_service_apps.py as oslo.service
users write them, and drives it with signals.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from oslo_service_apps import CONFIG_ENV

from cotyledon_testkit import ManagerProcess

StartApp = Callable[[str], ManagerProcess]


def _write_config(path: Path, **values: object) -> None:
    lines = ["[DEFAULT]", *(f"{name} = {value}" for name, value in values.items())]
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "service.conf"
    _write_config(path, greeting="hello")
    return path


@pytest.fixture
def start_app(manager_process: Callable[..., ManagerProcess], config_path: Path) -> StartApp:
    def start(name: str) -> ManagerProcess:
        return manager_process(
            f"oslo_service_apps:{name}",
            sys_path=[Path(__file__).parent],
            env={CONFIG_ENV: str(config_path)},
        )

    return start


def test_launch_starts_each_worker(start_app: StartApp) -> None:
    app = start_app("two_workers_app")

    launched = app.wait_event("launched")
    starts = app.wait_events("start", 2)

    assert launched["launcher"] == "ProcessLauncher"
    assert len({e.pid for e in starts}) == 2
    assert app.pid not in {e.pid for e in starts}


def test_launch_sigterm_stops_workers(start_app: StartApp) -> None:
    app = start_app("two_workers_app")
    app.wait_events("start", 2)

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert status == 0
    assert len([e for e in app.events if e.kind == "stop"]) == 2


def test_launch_single_worker_exits_zero(start_app: StartApp) -> None:
    app = start_app("one_worker_app")
    launched = app.wait_event("launched")
    app.wait_event("start")

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert launched["launcher"] == "ServiceLauncher"
    assert status == 0


def test_launch_sighup_restarts_with_new_values(start_app: StartApp, config_path: Path) -> None:
    app = start_app("two_workers_app")
    old = {e.pid for e in app.wait_events("start", 2)}
    _write_config(config_path, greeting="bonjour")
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    starts = app.wait_events("start", 2, after=mark)

    assert not old & {e.pid for e in starts}
    assert [e["greeting"] for e in starts] == ["bonjour", "bonjour"]


def test_launch_reloaded_timeout_ends_stop(start_app: StartApp, config_path: Path) -> None:
    app = start_app("two_workers_app")
    app.wait_events("start", 2)
    _write_config(config_path, greeting="hang", graceful_shutdown_timeout=1)
    mark = len(app.events)
    app.send_signal(signal.SIGHUP)
    starts = app.wait_events("start", 2, after=mark)

    started = time.monotonic()
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()
    elapsed = time.monotonic() - started

    assert [e["timeout"] for e in starts] == [1, 1]
    assert status == 0
    # The stop() of the new workers never returns: the master kills them
    # after the reloaded 1 s, not after the 60 s it started with.
    assert elapsed < 10
    assert "did not stop within 1.0 s" in app.log_text()
