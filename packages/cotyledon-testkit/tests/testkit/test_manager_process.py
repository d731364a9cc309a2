"""ManagerProcess: start, observe, signal and clean up a real process tree."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import WaitTimeoutError
from cotyledon_testkit._process_tree import read_process

HERE = Path(__file__).parent


def _running(pid: int) -> bool:
    info = read_process(pid)
    return info is not None and info.state != "Z"


def test_harness_receives_events_and_status() -> None:
    with ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]) as harness:
        ready = harness.wait_event("ready")
        harness.send_signal(signal.SIGTERM)
        status = harness.wait_exit()
        stopping = harness.wait_event("stopping")

    assert ready.pid == harness.pid
    assert stopping.pid == harness.pid
    assert status == 7


def test_harness_close_kills_whole_session() -> None:
    harness = ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]).start()
    child = harness.wait_event("ready")["child"]

    harness.close()

    assert not _running(harness.pid)
    assert not _running(child)


def test_harness_timeout_error_shows_context() -> None:
    with ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]) as harness:
        harness.wait_event("ready")

        with pytest.raises(WaitTimeoutError) as caught:
            harness.wait_event("never", timeout=0.2)

    message = str(caught.value)
    assert "waiting for event never" in message
    assert "ready pid=" in message
    assert "processes of the session" in message


def test_harness_notices_exit_without_events() -> None:
    with ManagerProcess("harness_apps:exit_at_once", sys_path=[HERE]) as harness:
        status = harness.wait_exit(timeout=10)

        assert "exiting now" in harness.log_text()
    assert status == 3


def test_harness_rejects_bad_target() -> None:
    with pytest.raises(ValueError, match="target must be 'module:function'"):
        ManagerProcess("no_colon")


def test_harness_repr_shows_state() -> None:
    harness = ManagerProcess("harness_apps:exit_at_once", sys_path=[HERE])

    text = repr(harness)
    harness.start()
    harness.wait_exit()
    harness.close()

    assert "not started" in text
    assert "exited=3" in repr(harness)
    assert os.path.basename(str(harness.log_path)) == "manager.log"
