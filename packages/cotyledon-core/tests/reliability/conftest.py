"""Fixtures of the reliability suites: real managers under attack.

``COTYLEDON_SOAK=1`` selects the long versions (``make soak``);
``COTYLEDON_SEED`` replays the schedules of a seed;
``COTYLEDON_RELIABILITY_REPORT`` names a file that gets one JSON line of
figures per pytest process at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from reliability_support import APPS_DIR
from reliability_support import REPORT_ENV
from reliability_support import START_METHOD_ENV
from reliability_support import TALLY
from reliability_support import base_seed
from reliability_support import write_report

from cotyledon_testkit import ManagerProcess

StartApp = Callable[..., ManagerProcess]


@pytest.fixture
def start_app(manager_process: Callable[..., ManagerProcess]) -> StartApp:
    """Start the function ``name`` of ``reliability_apps.py`` as a manager.

    Its workers start with ``start_method``. With ``control_socket``, the
    manager serves its status at that path.
    """

    def start(
        name: str,
        env: Mapping[str, str] | None = None,
        sys_path: Sequence[Path] = (),
        *,
        start_method: str = "fork",
        control_socket: Path | None = None,
        **kwargs: Any,
    ) -> ManagerProcess:
        full_env = {**(env or {}), START_METHOD_ENV: start_method}
        if control_socket is not None:
            full_env["RELIABILITY_CONTROL_SOCKET"] = str(control_socket)
        return manager_process(
            f"reliability_apps:{name}",
            sys_path=[APPS_DIR, *sys_path],
            env=full_env,
            **kwargs,
        )

    return start


@pytest.fixture
def control_socket() -> Iterator[Path]:
    """A path for the manager's control socket, in a new directory.

    The directory is under the system's temporary directory rather than
    ``tmp_path``, whose paths can outgrow the 107 bytes of a Unix socket path.
    """
    directory = tempfile.mkdtemp(prefix="cotyledon-control-")
    try:
        yield Path(directory) / "control"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The scenario's seed, printed so that a failure can be replayed."""
    value = base_seed()
    TALLY.seeds.append(value)
    TALLY.scenarios.append(request.node.name)
    print(f"seed {value}: replay with {'COTYLEDON_SEED'}={value}")
    return value


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" and report.failed:
        TALLY.failures.append(item.name)


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        write_report(Path(path), worker)
