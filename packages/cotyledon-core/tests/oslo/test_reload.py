"""The oslo.config glue with real processes and real configuration files."""

from __future__ import annotations

import pickle
import signal
import time
from pathlib import Path

import pytest
from oslo_config import cfg
from oslo_support import StartApp
from oslo_support import option_logged
from oslo_support import worker_runs
from oslo_support import write_config

from cotyledon import ReloadOutcome
from cotyledon_testkit import ManagerEventKind

APPS = ["reload_app", "mutate_app"]


def _config_picklable() -> bool:
    conf = cfg.ConfigOpts()
    conf(args=[], default_config_files=[], default_config_dirs=[])
    try:
        pickle.dumps(conf)
    except Exception:
        return False
    return True


needs_picklable_config = pytest.mark.skipif(
    not _config_picklable(), reason="oslo.config before 10.6 cannot pickle a ConfigOpts for spawn"
)


@pytest.mark.parametrize("app_name", APPS)
def test_reload_updates_master_values(
    start_app: StartApp, config_path: Path, app_name: str
) -> None:
    app = start_app(app_name)
    app.wait_events("run", 3)
    write_config(config_path, greeting="bonjour", graceful_shutdown_timeout=7)
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    hook = app.wait_event("hook_reload", after=mark)

    assert hook["greeting"] == "bonjour"
    assert hook["timeout"] == 7


@pytest.mark.parametrize("app_name", APPS)
def test_reload_worker_reads_new_values(
    start_app: StartApp, config_path: Path, app_name: str
) -> None:
    app = start_app(app_name)
    app.wait_events("run", 3)
    write_config(config_path, greeting="bonjour")
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    reloads = app.wait_events("reload", 2, after=mark)

    assert [e["greeting"] for e in reloads] == ["bonjour", "bonjour"]


@pytest.mark.parametrize("app_name", APPS)
def test_reload_restarted_worker_has_new_values(
    start_app: StartApp, config_path: Path, app_name: str
) -> None:
    app = start_app(app_name)
    app.wait_events("run", 3)
    first = worker_runs(app, "restarting-greeter")[0]
    write_config(config_path, greeting="bonjour")
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    restarted = app.wait_event("run", service="restarting-greeter", after=mark)

    assert restarted.pid != first.pid
    assert restarted["greeting"] == "bonjour"


@pytest.mark.parametrize("app_name", APPS)
def test_reload_bad_file_keeps_values(
    start_app: StartApp, config_path: Path, app_name: str
) -> None:
    app = start_app(app_name)
    app.wait_ready()
    workers = app.live_workers()
    config_path.write_text("[DEFAULT\ngreeting = bonjour\n")
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    hook = app.wait_event("hook_reload", after=mark)
    reloaded = app.wait_manager_event(ManagerEventKind.RELOADED, after=mark)

    assert hook["greeting"] == "hello"
    assert hook["timeout"] == 60
    assert reloaded.reload_outcome is ReloadOutcome.CANCELLED
    # The master cancelled the reload: no worker reloaded or restarted.
    assert not [e for e in app.events[mark:] if e.kind in ("reload", "worker_exited")]
    assert app.live_workers() == workers
    assert "Reload cancelled by a hook" in app.log_text()
    errors = [
        line
        for line in app.log_text().splitlines()
        if "ERROR cotyledon.oslo_config_glue: Reloading the configuration files" in line
    ]
    assert len(errors) == 1
    assert str(config_path) in errors[0]
    assert f"Failed to parse {config_path}" in app.log_text()


@pytest.mark.parametrize("app_name", APPS)
def test_reload_after_bad_file_works(start_app: StartApp, config_path: Path, app_name: str) -> None:
    app = start_app(app_name)
    app.wait_ready()
    config_path.write_text("[DEFAULT\ngreeting = bonjour\n")
    mark = len(app.events)
    app.send_signal(signal.SIGHUP)
    app.wait_event("manager_reloaded", after=mark)
    write_config(config_path, greeting="hallo")
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    hook = app.wait_event("hook_reload", after=mark)
    reloads = app.wait_events("reload", 2, after=mark)
    reloaded = app.wait_manager_event(ManagerEventKind.RELOADED, after=mark)

    assert hook["greeting"] == "hallo"
    assert [e["greeting"] for e in reloads] == ["hallo", "hallo"]
    assert reloaded.reload_outcome is ReloadOutcome.DONE


def test_reload_negative_timeout_keeps_old(start_app: StartApp, config_path: Path) -> None:
    app = start_app("reload_app")
    app.wait_events("run", 3)
    write_config(config_path, greeting="bonjour", graceful_shutdown_timeout=-5)
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    hook = app.wait_event("hook_reload", after=mark)

    assert hook["greeting"] == "bonjour"
    assert hook["timeout"] == 60
    assert "graceful_shutdown_timeout is not valid" in app.log_text()


def test_reload_timeout_applies_to_next_shutdown(start_app: StartApp, config_path: Path) -> None:
    app = start_app("stuck_app")
    configured = app.wait_event("configured")
    app.wait_event("run", service="stuck")
    write_config(config_path, greeting="hello", graceful_shutdown_timeout=1)
    mark = len(app.events)
    app.send_signal(signal.SIGHUP)
    app.wait_event("hook_reload", after=mark, timeout=1)

    started = time.monotonic()
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()
    elapsed = time.monotonic() - started

    assert configured["timeout"] == 60
    assert status == 0
    # Killed after the reloaded 1 s, far from the 60 s it started with.
    assert elapsed < 10
    assert "did not stop within 1.0 s" in app.log_text()


def test_log_options_at_start_and_reload(start_app: StartApp, config_path: Path) -> None:
    app = start_app("reload_app")
    app.wait_event("configured")
    runs = app.wait_events("run", 3)
    write_config(config_path, greeting="bonjour")
    mark = len(app.events)
    app.send_signal(signal.SIGHUP)
    reloads = app.wait_events("reload", 2, after=mark)
    app.wait_event("hook_reload", after=mark)

    log = app.log_text()
    assert option_logged(log, app.pid, "greeting", "hello")
    assert all(option_logged(log, run.pid, "greeting", "hello") for run in runs)
    assert option_logged(log, app.pid, "greeting", "bonjour")
    assert all(option_logged(log, reload.pid, "greeting", "bonjour") for reload in reloads)


def test_log_options_false_logs_nothing(start_app: StartApp, config_path: Path) -> None:
    write_config(config_path, greeting="hello", log_options="false")
    app = start_app("reload_app")
    app.wait_event("configured")
    runs = app.wait_events("run", 3)
    mark = len(app.events)
    app.send_signal(signal.SIGHUP)
    app.wait_events("reload", 2, after=mark)
    app.wait_event("hook_reload", after=mark)

    log = app.log_text()
    assert not option_logged(log, app.pid, "greeting", "hello")
    assert not any(option_logged(log, run.pid, "greeting", "hello") for run in runs)


@needs_picklable_config
def test_spawn_worker_starts_with_values(start_app: StartApp) -> None:
    app = start_app("spawn_app")

    run = app.wait_event("run", service="greeter")

    assert run["greeting"] == "hello"


@needs_picklable_config
def test_spawn_worker_survives_reload(start_app: StartApp, config_path: Path) -> None:
    app = start_app("spawn_app")
    run = app.wait_event("run", service="greeter")
    write_config(config_path, greeting="bonjour")
    mark = len(app.events)

    app.send_signal(signal.SIGHUP)
    reload = app.wait_event("reload", after=mark)

    assert reload.pid == run.pid
    # oslo.config cannot reload a configuration that was pickled to a
    # spawned worker, so the worker keeps its values and logs the error.
    assert reload["greeting"] == "hello"
    assert "failed in the worker greeter(0)" in app.log_text()
