"""ManagerProcess: start, observe, signal and clean up a real process tree."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness_apps import EVENT_BURST

from cotyledon import WorkerEventKind
from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerExitedError
from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import ProbeEvent
from cotyledon_testkit import StartManager
from cotyledon_testkit import WaitTimeoutError
from cotyledon_testkit import close_all_managers
from cotyledon_testkit import open_managers
from cotyledon_testkit._harness import PARENT_PID_ENV
from cotyledon_testkit._launch import PARENT_GONE_STATUS
from cotyledon_testkit._process_tree import live_processes_of_session
from cotyledon_testkit._process_tree import read_process

HERE = Path(__file__).parent

StartHarness = StartManager


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


def test_harness_close_removes_temp_files() -> None:
    harness = ManagerProcess("harness_apps:leave_temp_file", sys_path=[HERE]).start()
    event = harness.wait_event("temp")
    path = Path(event["path"])
    assert path.exists()
    assert Path(event["tmpdir"]) == harness.log_path.parent

    os.kill(harness.pid, signal.SIGKILL)
    harness.close()

    assert not path.exists()


def test_harness_temp_dir_from_env_wins(tmp_path: Path) -> None:
    env = {"TMPDIR": str(tmp_path)}
    with ManagerProcess("harness_apps:leave_temp_file", sys_path=[HERE], env=env) as harness:
        event = harness.wait_event("temp")

    assert Path(event["tmpdir"]) == tmp_path
    assert Path(event["path"]).exists()


def test_harness_timeout_error_shows_context() -> None:
    with ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]) as harness:
        harness.wait_event("ready")

        with pytest.raises(WaitTimeoutError) as caught:
            harness.wait_event("never", timeout=0.2)

    message = str(caught.value)
    assert "timed out after 0.2 s waiting for event never" in message
    assert "ready pid=" in message
    assert "processes of the session" in message
    assert "log tail:" in message


def test_harness_timeout_error_shows_tree() -> None:
    with ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]) as harness:
        child = harness.wait_event("ready")["child"]

        with pytest.raises(WaitTimeoutError) as caught:
            harness.wait_event("never", timeout=0.1)

    message = str(caught.value)
    # The master is a root of the tree and its child is indented under it.
    assert re.search(rf"^  {harness.pid} \w pgid={harness.pid} .*_launch", message, re.M)
    assert re.search(rf"^    {child} \w pgid={harness.pid} .*sleep", message, re.M)


def test_harness_notices_exit_without_events() -> None:
    with ManagerProcess("harness_apps:exit_at_once", sys_path=[HERE]) as harness:
        status = harness.wait_exit(timeout=10)

        assert "exiting now" in harness.log_text()
    assert status == 3


def test_harness_rejects_bad_target() -> None:
    with pytest.raises(ValueError, match="target must be 'module:function'"):
        ManagerProcess("no_colon")


def test_harness_closed_after_failed_start(tmp_path: Path) -> None:
    threads = threading.active_count()
    descriptors = len(os.listdir("/proc/self/fd"))
    harness = ManagerProcess("harness_apps:sleepers", sys_path=[HERE], cwd=tmp_path / "missing")

    with pytest.raises(FileNotFoundError), harness:
        pass

    assert harness.closed
    assert threading.active_count() == threads
    assert len(os.listdir("/proc/self/fd")) == descriptors
    assert not harness.log_path.parent.exists()


def test_harness_repr_shows_state() -> None:
    harness = ManagerProcess("harness_apps:exit_at_once", sys_path=[HERE])

    text = repr(harness)
    harness.start()
    harness.wait_exit()
    harness.close()

    assert "not started" in text
    assert "exited=3" in repr(harness)
    assert os.path.basename(str(harness.log_path)) == "manager.log"


def test_harness_wait_for_polls_by_default(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    with ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]) as harness:
        harness.wait_event("ready")
        # No event comes after the file appears, so only polling finds it
        # before the timeout.
        threading.Timer(0.2, flag.touch).start()
        started = time.monotonic()

        harness.wait_for(flag.exists, timeout=30)

    assert time.monotonic() - started < 15


def test_harness_wait_for_without_polling() -> None:
    checks = {"polled": 0, "unpolled": 0}

    def never(name: str) -> Callable[[], bool]:
        def check() -> bool:
            checks[name] += 1
            return False

        return check

    with ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]) as harness:
        harness.wait_event("ready")
        with pytest.raises(WaitTimeoutError):
            harness.wait_for(never("polled"), timeout=1.0)
        with pytest.raises(WaitTimeoutError):
            harness.wait_for(never("unpolled"), timeout=1.0, poll_interval=None)

    # No event comes: without polling, the condition is checked at the
    # start and at the deadline only.
    assert checks["polled"] >= 4
    assert checks["unpolled"] <= 3


def test_harness_reads_events_while_test_busy(tmp_path: Path) -> None:
    done = tmp_path / "done"
    harness = ManagerProcess(
        "harness_apps:report_burst", sys_path=[HERE], env={"BURST_DONE": str(done)}
    )
    with harness:
        # The test reads nothing until the sender is done: a sender that
        # waited on a full queue would never create the file.
        deadline = time.monotonic() + 15
        while not done.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        ticks = [event["index"] for event in harness.receive()]

    assert done.exists()
    assert ticks == list(range(EVENT_BURST))


def test_harness_log_level_filters_log() -> None:
    harness = ManagerProcess("harness_apps:chatty_log", sys_path=[HERE], log_level="info")
    with harness:
        harness.wait_event("logged")
        log = harness.log_text()

    assert "all logged" in log
    assert "disk almost full" in log
    assert "detail 0" not in log


def test_harness_rejects_unknown_log_level() -> None:
    with pytest.raises(ValueError, match="invalid log_level 'LOUD'"):
        ManagerProcess("harness_apps:chatty_log", sys_path=[HERE], log_level="LOUD")


def test_harness_wait_error_keeps_warnings() -> None:
    with ManagerProcess("harness_apps:chatty_log", sys_path=[HERE]) as harness:
        harness.wait_event("logged")
        with pytest.raises(WaitTimeoutError) as caught:
            harness.wait_event("never", timeout=0.1)

    message = str(caught.value)
    before_tail, _, tail = message.partition("\nlog tail:\n")
    assert "warnings and errors before the log tail:" in before_tail
    assert "WARNING chatty: disk almost full" in before_tail
    assert "disk almost full" not in tail


def test_harness_close_is_idempotent() -> None:
    harness = ManagerProcess("harness_apps:exit_at_once", sys_path=[HERE]).start()
    harness.wait_exit()

    harness.close()
    harness.close()

    assert "closed" in repr(harness)
    assert "exiting now" in harness.log_text()


def test_harness_wait_ready_gives_summary(manager_process: StartHarness) -> None:
    harness = manager_process("harness_apps:sleepers", sys_path=[HERE])

    ready = harness.wait_ready()

    assert ready.kind is ManagerEventKind.READY
    assert ready.summary == "sleeper 2/2"
    assert harness.events[ready.index].kind == "manager_ready"


def test_harness_worker_events_are_typed(manager_process: StartHarness) -> None:
    harness = manager_process("harness_apps:sleepers", sys_path=[HERE])
    harness.wait_ready()

    started = harness.worker_events(kind=WorkerEventKind.STARTED)

    assert [(event.service, event.worker_id) for event in started] == [
        ("sleeper", 0),
        ("sleeper", 1),
    ]
    assert [event.pid for event in started] == list(harness.live_workers().values())
    assert all(harness.events[event.index].kind == "worker_started" for event in started)


def test_harness_timeout_error_names_live_workers(manager_process: StartHarness) -> None:
    harness = manager_process("harness_apps:sleepers", sys_path=[HERE])
    harness.wait_ready()
    pids = harness.live_workers()

    with pytest.raises(WaitTimeoutError) as caught:
        harness.wait_worker_ready("sleepr", 0, timeout=0.2)

    message = str(caught.value)
    assert "waiting for worker sleepr(0) to be ready" in message
    expected = f"live workers: sleeper(0) pid {pids[('sleeper', 0)]}, sleeper(1) pid"
    assert expected in message


def test_harness_killed_worker_comes_back(manager_process: StartHarness) -> None:
    harness = manager_process("harness_apps:sleepers", sys_path=[HERE])
    harness.wait_ready()
    mark = harness.mark()

    old = harness.kill_worker("sleeper", 1)
    exited = harness.wait_worker_exited("sleeper", 1, pid=old)
    back = harness.wait_worker_ready("sleeper", 1, after=mark)

    assert exited.exit_code == -signal.SIGKILL
    assert exited.stop_reason is None
    assert back.pid != old
    assert harness.worker_pid("sleeper", 1) == back.pid
    assert harness.restarts("sleeper") == 1
    assert harness.restarts("sleeper", 0) == 0


def test_harness_stop_reports_typed_exits(manager_process: StartHarness) -> None:
    harness = manager_process("harness_apps:sleepers", sys_path=[HERE])
    harness.wait_ready()

    harness.send_signal(signal.SIGTERM)
    status = harness.wait_exit()

    exits = harness.worker_events(kind=WorkerEventKind.EXITED)
    assert status == 0
    assert [event.stop_reason for event in exits] == ["shutdown", "shutdown"]
    assert [event.kind for event in harness.manager_events()] == [
        ManagerEventKind.READY,
        ManagerEventKind.STOPPING,
    ]
    assert harness.restarts() == 0


def test_harness_wait_ready_fails_on_exit() -> None:
    with (
        ManagerProcess("harness_apps:exit_at_once", sys_path=[HERE]) as harness,
        pytest.raises(ManagerExitedError) as caught,
    ):
        harness.wait_ready(timeout=60)

    message = str(caught.value)
    assert "the master exited with status 3 while waiting for the manager to be ready" in message
    assert "exiting now" in message


def test_harness_signal_worker_unknown_slot() -> None:
    with ManagerProcess("harness_apps:sleepers", sys_path=[HERE]) as harness:
        harness.wait_ready()

        with pytest.raises(LookupError, match=r"no live worker sleeper\(5\)"):
            harness.signal_worker("sleeper", 5, signal.SIGTERM)


def test_harness_signal_worker_stays_in_session() -> None:
    with ManagerProcess("harness_apps:sleepers", sys_path=[HERE]) as harness:
        harness.wait_ready()
        # An event that names a process outside the manager's session, as
        # when a dead worker's pid is reused.
        fields = {"service": "ghost", "worker_id": 0, "worker_pid": os.getpid()}
        harness.events.append(ProbeEvent("worker_started", harness.pid, 0.0, fields))

        with pytest.raises(LookupError, match="is not in the session"):
            harness.signal_worker("ghost", 0, 0)


def test_close_all_managers_kills_leftovers() -> None:
    harness = ManagerProcess("harness_apps:report_and_wait", sys_path=[HERE]).start()
    child = harness.wait_event("ready")["child"]

    close_all_managers()

    assert harness not in open_managers()
    assert not _running(harness.pid)
    assert not _running(child)


def test_close_all_managers_closes_unstarted() -> None:
    harness = ManagerProcess("harness_apps:sleepers", sys_path=[HERE])
    reader = harness._channel._reader._thread

    assert harness in open_managers()
    assert reader.is_alive()
    close_all_managers()

    assert harness.closed
    assert harness not in open_managers()
    assert not reader.is_alive()


def test_launcher_exits_when_parent_gone() -> None:
    env = dict(os.environ, PYTHONPATH=str(HERE), **{PARENT_PID_ENV: "1"})

    result = subprocess.run(
        [sys.executable, "-m", "cotyledon_testkit._launch", "harness_apps:exit_at_once"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == PARENT_GONE_STATUS
    assert "the test process 1 died before the manager started" in result.stderr


def test_launcher_dies_with_its_parent() -> None:
    # A parent that starts the launcher, prints its pid and waits.
    parent_code = (
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-m', 'cotyledon_testkit._launch',"
        " 'harness_apps:sleepers'], start_new_session=True,"
        f" env=dict(os.environ, {PARENT_PID_ENV}=str(os.getpid())))\n"
        "print(child.pid, flush=True)\n"
        "sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", parent_code],
        env=dict(os.environ, PYTHONPATH=str(HERE)),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as parent:
        assert parent.stdout is not None
        master = int(parent.stdout.readline())
        try:
            # Once its two workers run, the master is past the launcher's
            # check of its parent: only the parent-death signal can end it.
            started = _wait_for_session_size(master, 3, timeout=30)
            os.kill(parent.pid, signal.SIGKILL)
            parent.wait(timeout=60)

            survivors = _wait_for_empty_session(master, timeout=15)
        finally:
            _kill_session(master)
            parent.kill()

    assert started
    assert survivors == []


def _wait_for_session_size(session: int, size: int, timeout: float) -> bool:
    """Poll until the session has ``size`` live processes; return whether it did."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p for p in live_processes_of_session(session) if p.state != "Z"]
        if len(alive) >= size:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _wait_for_empty_session(session: int, timeout: float) -> list[int]:
    """Poll until no live process is left in the session; return those left."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [p.pid for p in live_processes_of_session(session) if p.state != "Z"]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)


def _kill_session(session: int) -> None:
    for process in live_processes_of_session(session):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
