"""oslo.service's threading launcher, driven as its users drive it.

oslo.service depends on the distribution named ``cotyledon``; in this
repository's environment that is the code-free distribution that installs
cotyledon-core, so these programs run on this project. oslo.service needs
Python 3.11 or later: on older Pythons these tests are skipped.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cotyledon_testkit import ManagerProcess

pytest.importorskip("oslo_service", reason="oslo.service needs Python 3.11 or later")

# The name that oslo_service_apps reads; not imported from it, so that this
# process never imports oslo.service and eventlet.
CONFIG_ENV = "OSLO_SERVICE_APPS_CONFIG"

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


def test_oslo_launcher_starts_and_stops(start_app: StartApp) -> None:
    app = start_app("two_workers_app")

    launched = app.wait_event("launched")
    starts = app.wait_events("start", 2)
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert launched["launcher"] == "ProcessLauncher"
    assert len({e.pid for e in starts}) == 2
    assert status == 0
    assert len([e for e in app.events if e.kind == "stop"]) == 2


def test_oslo_launcher_reloads_new_values(start_app: StartApp, config_path: Path) -> None:
    app = start_app("two_workers_app")
    old = {e.pid for e in app.wait_events("start", 2)}
    _write_config(config_path, greeting="bonjour")
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    starts = app.wait_events("start", 2, after=mark)

    assert not old & {e.pid for e in starts}
    assert [e["greeting"] for e in starts] == ["bonjour", "bonjour"]


def test_oslo_launcher_single_worker_exits_zero(start_app: StartApp) -> None:
    app = start_app("one_worker_app")
    launched = app.wait_event("launched")
    app.wait_event("start")

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()

    assert launched["launcher"] == "ServiceLauncher"
    assert status == 0


def test_oslo_launcher_reloaded_timeout_ends_stop(start_app: StartApp, config_path: Path) -> None:
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
