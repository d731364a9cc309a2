"""The operator's view of a real manager: ``ServiceManager.status()``, the
control socket and ``python -m cotyledon``; and the reaping of orphans by a
master that is PID 1."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from runtime_support import APPS_DIR

from cotyledon.core import ManagerPhase
from cotyledon.core import ManagerStatus
from cotyledon.runtime._operator import answer
from cotyledon_testkit import ManagerProcess


@pytest.fixture
def operator_app(
    manager_process: Callable[..., ManagerProcess], tmp_path: Path
) -> tuple[ManagerProcess, Path]:
    path = tmp_path / "control.sock"
    app = manager_process(
        "policy_apps:operator_app", sys_path=[APPS_DIR], env={"CONTROL_SOCKET": str(path)}
    )
    return app, path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cotyledon", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_status_published_to_other_thread(operator_app: tuple[ManagerProcess, Path]) -> None:
    app, _ = operator_app

    seen = app.wait_event("status_seen")

    assert app.wait_event("status_before_run")["summary"] == "new: probe 0/2"
    assert seen["summary"] == "probe 2/2"


def test_control_socket_is_private(operator_app: tuple[ManagerProcess, Path]) -> None:
    app, path = operator_app
    app.wait_ready()

    mode = stat.S_IMODE(path.stat().st_mode)

    assert mode == 0o600


def test_cli_status_prints_json(operator_app: tuple[ManagerProcess, Path]) -> None:
    app, path = operator_app
    app.wait_ready()

    result = _cli("status", str(path))

    document = json.loads(result.stdout)
    assert result.returncode == 0
    assert document["summary"] == "probe 2/2"
    assert document["last_reload"] is None
    assert [slot["state"] for slot in document["services"][0]["slots"]] == ["running"] * 2


def test_cli_ready_and_live_exit_zero(operator_app: tuple[ManagerProcess, Path]) -> None:
    app, path = operator_app
    app.wait_ready()

    ready = _cli("ready", str(path))
    live = _cli("live", str(path))

    assert (ready.returncode, json.loads(ready.stdout)["ready"]) == (0, True)
    assert (live.returncode, json.loads(live.stdout)["live"]) == (0, True)


def test_cli_live_fails_after_exit(operator_app: tuple[ManagerProcess, Path]) -> None:
    app, path = operator_app
    app.wait_ready()
    app.send_signal(signal.SIGTERM)
    app.wait_exit()

    result = _cli("live", str(path))

    assert result.returncode == 1
    assert "no response from" in result.stderr
    assert not path.exists()


def test_answer_unknown_request_names_choices() -> None:
    status = ManagerStatus(ManagerPhase.RUNNING, True, ())

    document = answer("health", status)

    assert document == {"error": "unknown request 'health'; expected one of status, ready, live"}


# One child of this script plays an orphan adopted by PID 1, another a
# worker. Both have exited before reap_adopted runs.
_REAP_SCRIPT = textwrap.dedent(
    """
    import json, os
    from cotyledon.runtime._adopted import reap_adopted

    def child() -> int:
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
        return pid

    orphan, worker = child(), child()
    reaped_workers = []

    def reap_workers() -> None:
        reaped_workers.append(os.waitpid(worker, 0))

    count = reap_adopted(lambda pid: pid == worker and not reaped_workers, reap_workers)
    try:
        os.waitpid(orphan, os.WNOHANG)
        orphan_left = True
    except ChildProcessError:
        orphan_left = False
    print(json.dumps({
        "count": count,
        "orphan_left": orphan_left,
        "worker_status": [os.waitstatus_to_exitcode(s) for _, s in reaped_workers],
    }))
    """
)


def test_reap_adopted_keeps_worker_status() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _REAP_SCRIPT],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
        env={**os.environ},
    )

    outcome = json.loads(result.stdout)

    assert outcome == {"count": 1, "orphan_left": False, "worker_status": [7]}


def test_status_during_worker_churn(
    manager_process: Callable[..., ManagerProcess],
) -> None:
    app = manager_process("policy_apps:status_churn_app", sys_path=[APPS_DIR])

    seen = app.wait_event("read", timeout=30)
    status = app.wait_exit(30)

    assert seen["failures"] == []
    assert seen["reads"] > 100
    assert status == 0
