"""The entry point in a fresh interpreter, where nothing has imported the
listener yet: what a master imports for it, and what it takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import cotyledon_systemd
from cotyledon_systemd._notify import NOTIFY_SOCKET_ENV
from cotyledon_testkit import NotifyReceiver

# The variables that turn on a listener: left out of the fresh
# interpreters unless a test sets them.
_LISTENER_VARIABLES = (*cotyledon_systemd.SYSTEMD_VARIABLES, "COTYLEDON_SYSTEMD")

# A manager whose one worker writes the modules it inherited from the
# master to the file argv[1], then exits 0: with restart="never", the
# manager then stops. argv[2]
# is "discover" to load the entry points, as a manager does by default.
MANAGER_SCRIPT = """
import os, sys
import cotyledon

class DumpModules(cotyledon.Service):
    def __init__(self, worker_id, path):
        super().__init__(worker_id)
        self._path = path

    def run(self):
        with open(self._path + ".tmp", "w") as file:
            file.write("\\n".join(sorted(sys.modules)))
        os.rename(self._path + ".tmp", self._path)
        sys.exit(0)

manager = cotyledon.ServiceManager(discover_listeners=sys.argv[2] == "discover")
manager.add(DumpModules, args=(sys.argv[1],), restart="never")
manager.run()
"""

# Two runs of the entry points, as at two run() of a master, with the
# Python code argv[1] in between. The script then prints the results, the
# variables named in argv[2] that are left in the environment, and what
# systemd_environment() returns.
ENTRY_POINT_SCRIPT = """
import json, os, sys
import cotyledon
from cotyledon._discovery import discover_listeners

listeners = discover_listeners()
loaded = sorted(name for name in sys.modules if name.startswith("cotyledon_systemd"))
exec(sys.argv[1])
second = discover_listeners()
left = {name: os.environ.get(name) for name in json.loads(sys.argv[2])}
from cotyledon_systemd import systemd_environment
taken = systemd_environment()
print(json.dumps({
    "listeners": [type(listener).__name__ for listener in listeners],
    "second": [type(listener).__name__ for listener in second],
    "loaded": loaded,
    "left": left,
    "taken": dict(taken.variables),
    "taken_pid": taken.pid,
    "pid": os.getpid(),
}))
"""


def _clean_environment(**variables: str) -> dict[str, str]:
    """Return this process's environment with no systemd or harness
    variable, plus ``variables``."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _LISTENER_VARIABLES and not name.startswith("COTYLEDON_TESTKIT_")
    }
    env.update(variables)
    return env


def _worker_modules(tmp_path: Path, mode: str) -> set[str]:
    """Run a manager outside systemd and outside a harness; return the
    modules of its worker, forked from the master."""
    path = tmp_path / f"modules-{mode}.txt"
    done = subprocess.run(
        [sys.executable, "-c", MANAGER_SCRIPT, str(path), mode],
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(path.read_text().split())


def _run_entry_point(code: str = "", **variables: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT_SCRIPT, code, json.dumps(_LISTENER_VARIABLES)],
        env=_clean_environment(**variables),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_master_outside_systemd_imports_entry_points_only(tmp_path: Path) -> None:
    without_listeners = _worker_modules(tmp_path, "skip")
    with_listeners = _worker_modules(tmp_path, "discover")

    added = with_listeners - without_listeners

    # Both distributions of this workspace declare a listener entry point.
    assert added == {
        "cotyledon_systemd",
        "cotyledon_systemd._entry_point",
        "cotyledon_testkit",
        "cotyledon_testkit._channel_env",
        "cotyledon_testkit._listener",
    }
    assert "json" not in with_listeners


def test_entry_point_without_variables_imports_no_listener() -> None:
    result = _run_entry_point()

    assert result["listeners"] == []
    assert result["loaded"] == ["cotyledon_systemd", "cotyledon_systemd._entry_point"]
    assert result["taken"] == {}
    assert result["taken_pid"] == result["pid"]


def test_entry_point_keeps_first_empty_take() -> None:
    # As when the first run() took the variables: a NOTIFY_SOCKET set after
    # it is neither used nor taken.
    result = _run_entry_point("os.environ['NOTIFY_SOCKET'] = '/run/late.sock'")

    assert result["second"] == []
    assert result["taken"] == {}
    assert result["taken_pid"] == result["pid"]
    left = result["left"]
    assert left["NOTIFY_SOCKET"] == "/run/late.sock"


@pytest.mark.parametrize(
    "variables",
    [
        {"LISTEN_FDS": "1", "LISTEN_PID": "1"},
        {"WATCHDOG_USEC": "2000000"},
    ],
)
def test_entry_point_takes_variables_without_notify_socket(variables: dict[str, str]) -> None:
    result = _run_entry_point(**variables)

    assert result["listeners"] == []
    assert "cotyledon_systemd._listener" not in result["loaded"]
    assert result["taken"] == variables
    left = result["left"]
    assert all(left[name] is None for name in variables)


def test_entry_point_disabled_leaves_environment(notify_socket: NotifyReceiver) -> None:
    result = _run_entry_point(NOTIFY_SOCKET=notify_socket.address, COTYLEDON_SYSTEMD="off")

    assert result["listeners"] == []
    assert result["second"] == []
    assert result["loaded"] == ["cotyledon_systemd", "cotyledon_systemd._entry_point"]
    left = result["left"]
    assert left["NOTIFY_SOCKET"] == notify_socket.address


def test_entry_point_under_systemd_creates_listener(notify_socket: NotifyReceiver) -> None:
    result = _run_entry_point(WATCHDOG_USEC="2000000", NOTIFY_SOCKET=notify_socket.address)

    assert result["listeners"] == ["SystemdListener"]
    assert result["second"] == ["SystemdListener"]
    assert "cotyledon_systemd._listener" in result["loaded"]
    assert result["taken"] == {
        "NOTIFY_SOCKET": notify_socket.address,
        "WATCHDOG_USEC": "2000000",
    }
    left = result["left"]
    assert left["NOTIFY_SOCKET"] is None


def test_entry_point_after_listener_by_hand(notify_socket: NotifyReceiver) -> None:
    code = (
        "from cotyledon_systemd import SystemdListener, SystemdEnvironment\n"
        f"environment = SystemdEnvironment({{'NOTIFY_SOCKET': {notify_socket.address!r}}}, 1)\n"
        "SystemdListener(environment).close()\n"
    )

    result = _run_entry_point(code, NOTIFY_SOCKET=notify_socket.address)

    # The first run() made its own listener; after the one made by hand,
    # the entry point adds none.
    assert result["listeners"] == ["SystemdListener"]
    assert result["second"] == []


def test_entry_point_rejects_relative_socket() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from cotyledon_systemd import create_listener\ncreate_listener()"],
        env=_clean_environment(NOTIFY_SOCKET="run/notify.sock"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 1
    assert "InvalidNotifySocketError" in done.stderr
    assert "absolute socket path" in done.stderr


def test_systemd_variables_name_notify_socket() -> None:
    assert NOTIFY_SOCKET_ENV in cotyledon_systemd.SYSTEMD_VARIABLES
