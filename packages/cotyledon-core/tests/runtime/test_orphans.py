"""The process groups that ended workers leave behind, with real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from cotyledon.runtime._orphans import OrphanGroups


def test_empty_group_is_forgotten() -> None:
    # A group of its own, as a worker's: its number is free again once
    # empty, and a later kill must not reach whatever takes it.
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    groups = OrphanGroups()

    groups.end(sleeper.pid, 60.0)
    sleeper.wait(10)
    deadline = time.monotonic() + 10
    while (wait := groups.wait()) is not None and time.monotonic() < deadline:
        time.sleep(wait)
        groups.kill_due()

    assert sleeper.returncode == -15
    assert groups.wait() is None


def test_group_without_members_is_not_watched() -> None:
    gone = subprocess.Popen(["true"], start_new_session=True)
    gone.wait(10)
    groups = OrphanGroups()

    groups.end(gone.pid, 60.0)

    assert groups.wait() is None


def _ended(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] == b"Z"
    except FileNotFoundError:
        return True


def test_group_past_its_grace_is_killed(tmp_path: Path) -> None:
    # The leader (the worker) ends at once, and leaves a child in its group
    # that ignores SIGTERM and writes its pid.
    pid_file = tmp_path / "pid"
    child = f"trap '' TERM; echo $$ > {pid_file}.new; mv {pid_file}.new {pid_file}; "
    child += "while :; do sleep 0.05; done"
    leader = subprocess.Popen(["sh", "-c", f'sh -c "{child}" &'], start_new_session=True)
    leader.wait(10)
    deadline = time.monotonic() + 10
    while not pid_file.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    left = int(pid_file.read_text())
    groups = OrphanGroups()

    try:
        groups.end(leader.pid, 0.2)
        # Only the passing of time ends the grace: there is no event to wait for.
        time.sleep(0.3)
        groups.kill_due()

        deadline = time.monotonic() + 10
        while not _ended(left) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _ended(left)
        assert groups.wait() is None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(left, signal.SIGKILL)
