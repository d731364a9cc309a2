"""The processes left in the group of a worker that has ended.

Each worker leads a process group, and its children stay in that group
when the worker ends (killed, crashed, or after a fork and exit). With
their worker gone, nothing would stop them, and they would outlive the
manager. They get SIGTERM as soon as the worker is reaped, so that they
can clean up, and SIGKILL once the service's graceful shutdown timeout
has passed. A master that exits waits for them until then too, unless it
was interrupted (SIGINT) or the timeout is 0 (no deadline): then they get
SIGKILL when it exits.

A group's number is its worker's pid, which Linux hands out again once
the group is empty. A group is checked at least every second while it is
watched, and forgotten once empty, so that a kill never reaches a new
group that took its number.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Final
from typing import final

LOG = logging.getLogger(__name__)

_POLL_INTERVAL: Final = 0.05
"""Seconds between two looks at the groups that a master waits for at its exit."""

_CHECK_INTERVAL: Final = 1.0
"""Seconds between two looks at the watched groups while the master runs."""


@final
class OrphanGroups:
    """The process groups of ended workers that still had members."""

    def __init__(self) -> None:
        # Group number (the ended worker's pid): when what is left of it is
        # killed, on the time.monotonic() clock, or None for the master's exit.
        self._kill_at: dict[int, float | None] = {}
        self._checked_at = 0.0

    def __repr__(self) -> str:
        return f"<OrphanGroups pending={len(self._kill_at)}>"

    def end(self, group: int, grace: float | None) -> None:
        """Send SIGTERM to what is left of ``group``, and SIGKILL after
        ``grace`` seconds (None: at the master's exit)."""
        if not hasattr(os, "killpg"):
            return
        try:
            os.killpg(group, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            return  # nothing left of the group
        LOG.debug("Sent SIGTERM to the processes left in the group of worker %d", group)
        self._kill_at[group] = None if grace is None else time.monotonic() + grace

    def wait(self) -> float | None:
        """Return the seconds until the groups are due for a look, or None
        when none is watched."""
        if not self._kill_at:
            return None
        due = [when for when in self._kill_at.values() if when is not None]
        if not due:
            return _CHECK_INTERVAL
        return min(_CHECK_INTERVAL, max(0.0, min(due) - time.monotonic()))

    def kill_due(self) -> None:
        """Forget the groups that are empty, and kill what is left of those
        whose grace has passed."""
        if not self._kill_at:
            return
        now = time.monotonic()
        due = any(when is not None and when <= now for when in self._kill_at.values())
        # A look at /proc reads every process's stat: once a second at most.
        if due or now - self._checked_at >= _CHECK_INTERVAL:
            self._checked_at = now
            self._forget_empty()
        for group, when in list(self._kill_at.items()):
            if when is not None and when <= now:
                del self._kill_at[group]
                _kill(group, "after SIGTERM and the graceful shutdown timeout")

    def _forget_empty(self) -> None:
        live = _groups_with_live_members()
        for group in list(self._kill_at):
            if not _has_live_members(group, live):
                del self._kill_at[group]

    def wait_until_gone(self, wait: Callable[[float], bool]) -> None:
        """Wait until every group is empty or killed at its time.

        ``wait(seconds)`` waits up to that long for the master's signals and
        returns True when the master must exit at once (SIGINT). A group
        without a time (a graceful shutdown timeout of 0) is not waited for:
        the master would never exit.
        """
        while True:
            self._forget_empty()
            self.kill_due()
            if all(when is None for when in self._kill_at.values()):
                return
            if wait(_POLL_INTERVAL):
                return

    def kill_all(self) -> None:
        """Kill what is left of every group: the master exits."""
        groups = list(self._kill_at)
        self._kill_at.clear()
        for group in groups:
            _kill(group, "when the master exits")


def _groups_with_live_members() -> set[int] | None:
    """Return the groups of the processes that have not ended, or None
    where /proc cannot tell.

    An ended process stays a zombie until its parent reaps it, and the
    orphans of a worker have init for parent, which may take its time:
    Linux's /proc shows which processes are zombies.
    """
    try:
        entries = os.listdir("/proc")
    except OSError:
        return None
    groups: set[int] = set()
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                # The fields after the command name: state, ppid, pgrp, ...
                fields = stat.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != b"Z":
            groups.add(int(fields[2]))
    return groups


def _has_live_members(group: int, live: set[int] | None) -> bool:
    if live is not None:
        return group in live
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def _kill(group: int, when: str) -> None:
    # Linux does not reuse the number of a group that still has members.
    # A process that has the number now is a new one, and the group is
    # empty: there is nothing of ours to kill.
    if os.path.exists(f"/proc/{group}"):
        return
    try:
        os.killpg(group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    LOG.warning(
        "Killed the processes left in the group of worker %d: they were still there %s",
        group,
        when,
    )
