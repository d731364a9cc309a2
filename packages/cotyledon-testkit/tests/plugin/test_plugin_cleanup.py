"""No process that a harness started survives the test session.

Each test runs pytest on a generated test file that starts managers and
records their pids. It then checks from the outside that every process of
each manager's session is gone. The cases: a failed test, a timeout, a
harness left open, pytest-xdist, and pytest itself killed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from plugin_support import APPS_DIR
from plugin_support import alive_in_session
from plugin_support import read_pids
from plugin_support import record_pids_source
from plugin_support import wait_for_empty_session

# A manager whose master has died ends its workers on its own; this bounds
# how long that may take on a loaded machine.
ORPHAN_EXIT_TIMEOUT = 15.0


def test_plugin_failed_tests_kill_managers(
    pytester: pytest.Pytester, sessions_to_reap: list[int]
) -> None:
    # A failed assertion, a timeout (signal method) and a harness never
    # closed. Each manager has a stray child that the kernel's parent-death
    # signal of the master does not reach: only a kill of the session by
    # the testkit ends it.
    pytester.makepyfile(
        test_user=record_pids_source(pytester.path)
        + f"""
from cotyledon_testkit import ManagerProcess

APPS = [{str(APPS_DIR)!r}]

def test_fails(manager_process):
    manager = manager_process("plugin_apps:stray_child", sys_path=APPS)
    record_pids(master=manager.pid, child=manager.wait_event("child")["pid"])
    assert False, "the test fails with its manager running"

def test_times_out(manager_process):
    manager = manager_process("plugin_apps:stray_child", sys_path=APPS)
    record_pids(master=manager.pid, child=manager.wait_event("child")["pid"])
    manager.wait_event("never", timeout=600)

def test_leaks_harness():
    manager = ManagerProcess("plugin_apps:stray_child", sys_path=APPS).start()
    record_pids(master=manager.pid, child=manager.wait_event("child")["pid"])
"""
    )

    result = pytester.runpytest_subprocess("--timeout=5", "--timeout-method=signal")

    recorded = read_pids(pytester.path)
    sessions_to_reap.extend(pids["master"] for pids in recorded)
    result.assert_outcomes(passed=1, failed=2)
    assert "Timeout (>5.0s)" in result.stdout.str()
    assert len(recorded) == 3
    for pids in recorded:
        assert alive_in_session(pids["master"]) == []


def test_plugin_xdist_session_kills_leaked_managers(
    pytester: pytest.Pytester, sessions_to_reap: list[int]
) -> None:
    pytester.makepyfile(
        test_user=record_pids_source(pytester.path)
        + f"""
import pytest
from cotyledon_testkit import ManagerProcess

@pytest.mark.parametrize("number", [1, 2])
def test_leaks_harness(number):
    manager = ManagerProcess("plugin_apps:stray_child", sys_path=[{str(APPS_DIR)!r}]).start()
    record_pids(master=manager.pid, child=manager.wait_event("child")["pid"])
"""
    )

    result = pytester.runpytest_subprocess("-n", "2")

    recorded = read_pids(pytester.path)
    sessions_to_reap.extend(pids["master"] for pids in recorded)
    result.assert_outcomes(passed=2)
    assert len(recorded) == 2
    for pids in recorded:
        assert alive_in_session(pids["master"]) == []


@pytest.mark.usefixtures("inner_tmpdir")
def test_plugin_timeout_thread_method_kills_managers(
    pytester: pytest.Pytester, sessions_to_reap: list[int]
) -> None:
    # The thread method ends pytest with os._exit(), so no teardown runs:
    # the kernel kills the master, and its workers exit on their own.
    pytester.makepyfile(
        test_user=record_pids_source(pytester.path)
        + f"""

def test_hangs(manager_process):
    manager = manager_process("plugin_apps:two_waiters", sys_path=[{str(APPS_DIR)!r}])
    manager.wait_ready()
    record_pids(master=manager.pid)
    manager.wait_event("never", timeout=600)
"""
    )

    result = pytester.runpytest_subprocess("--timeout=3", "--timeout-method=thread")

    (pids,) = read_pids(pytester.path)
    sessions_to_reap.append(pids["master"])
    assert result.ret != 0
    assert wait_for_empty_session(pids["master"], ORPHAN_EXIT_TIMEOUT) == []


@pytest.mark.usefixtures("inner_tmpdir")
def test_plugin_sigkilled_pytest_kills_managers(
    pytester: pytest.Pytester, sessions_to_reap: list[int]
) -> None:
    pytester.makepyfile(
        test_user=record_pids_source(pytester.path)
        + f"""

def test_hangs(manager_process):
    manager = manager_process("plugin_apps:two_waiters", sys_path=[{str(APPS_DIR)!r}])
    manager.wait_ready()
    record_pids(master=manager.pid, workers=list(manager.live_workers().values()))
    manager.wait_event("never", timeout=600)
"""
    )
    log_path = pytester.path / "pytest.log"
    with (
        open(log_path, "wb") as log,
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_user.py"],
            cwd=pytester.path,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as inner,
    ):
        try:
            recorded = _wait_for_pids(pytester, inner, timeout=60)
            sessions_to_reap.extend(pids["master"] for pids in recorded)

            inner.send_signal(signal.SIGKILL)
            inner.wait(timeout=60)
        finally:
            inner.kill()

    output = log_path.read_text(errors="replace")
    assert recorded, f"the inner test recorded no pid; its output:\n{output}"
    (pids,) = recorded
    assert len(pids["workers"]) == 2
    assert wait_for_empty_session(pids["master"], ORPHAN_EXIT_TIMEOUT) == []


def _wait_for_pids(
    pytester: pytest.Pytester, inner: subprocess.Popen[bytes], timeout: float
) -> list[dict[str, Any]]:
    """Poll until the inner test has recorded its pids or pytest has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and inner.poll() is None:
        recorded = read_pids(pytester.path)
        if recorded:
            return recorded
        time.sleep(0.05)
    return read_pids(pytester.path)
