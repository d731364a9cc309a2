"""Fixtures of the runtime tests: real managers in fresh interpreters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from runtime_support import APPS_DIR
from runtime_support import StartApp

from cotyledon_testkit import ManagerProcess


@pytest.fixture
def start_app(manager_process: Callable[..., ManagerProcess]) -> StartApp:
    """Start the function ``name`` of ``runtime_apps.py`` as a manager."""

    def start(name: str, **kwargs: Any) -> ManagerProcess:
        return manager_process(f"runtime_apps:{name}", sys_path=[APPS_DIR], **kwargs)

    return start
