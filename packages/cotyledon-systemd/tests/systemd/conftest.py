"""Fixtures of the systemd tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from systemd_support import APPS_DIR
from systemd_support import StartApp

from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import NotifyReceiver


@pytest.fixture
def start_app(manager_process: Callable[..., ManagerProcess]) -> StartApp:
    """Start the function ``name`` of ``systemd_apps.py`` as a manager."""

    def start(name: str, **kwargs: Any) -> ManagerProcess:
        return manager_process(f"systemd_apps:{name}", sys_path=[APPS_DIR], **kwargs)

    return start


@pytest.fixture
def start_notified(start_app: StartApp, notify_socket: NotifyReceiver) -> StartApp:
    """Start an app of ``systemd_apps.py`` under ``notify_socket``.

    Keyword arguments are added to its environment. The harness is
    attached to the receiver, so that waits on the receiver read its
    events too.
    """

    def start(name: str, **env: str) -> ManagerProcess:
        app = start_app(name, env={**notify_socket.environment(), **env})
        notify_socket.attach(app)
        return app

    return start
