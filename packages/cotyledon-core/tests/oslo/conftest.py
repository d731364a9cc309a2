"""Fixtures of the oslo.config glue tests."""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from oslo_config import cfg
from oslo_support import APPS_DIR
from oslo_support import CONFIG_ENV
from oslo_support import StartApp
from oslo_support import write_config

import cotyledon
from cotyledon.runtime import _signals
from cotyledon_testkit import ManagerProcess


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A configuration file that starts with greeting = hello."""
    path = tmp_path / "app.conf"
    write_config(path, greeting="hello")
    return path


@pytest.fixture
def start_app(manager_process: Callable[..., ManagerProcess], config_path: Path) -> StartApp:
    """Start the function ``name`` of ``oslo_apps.py`` as a manager that
    reads ``config_path``."""

    def start(name: str, **kwargs: Any) -> ManagerProcess:
        env = {CONFIG_ENV: str(config_path)}
        return manager_process(f"oslo_apps:{name}", sys_path=[APPS_DIR], env=env, **kwargs)

    return start


@pytest.fixture
def conf() -> cfg.ConfigOpts:
    """A ConfigOpts that has parsed no argument and no file."""
    conf = cfg.ConfigOpts()
    conf(args=[], default_config_files=[], default_config_dirs=[])
    return conf


@pytest.fixture
def manager() -> Iterator[cotyledon.ServiceManager]:
    """A manager in the test process, never run. The test process gets its
    signal handlers back afterwards."""
    cotyledon.ServiceManager._process_runner_already_created = False
    try:
        yield cotyledon.ServiceManager()
    finally:
        cotyledon.ServiceManager._process_runner_already_created = False
        if _signals._active is not None:
            _signals._active.close()
