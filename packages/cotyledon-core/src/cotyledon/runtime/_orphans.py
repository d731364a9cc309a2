"""The processes left in the group of a worker that has ended.

Each worker leads a process group, and its children stay in that group
when the worker ends (killed, crashed, or after a fork and exit). With
their worker gone, nothing would stop them, and they would outlive the
manager. They get SIGTERM as soon as the worker is reaped, so that they
can clean up, and SIGKILL once the service's graceful shutdown timeout
has passed, or when the master exits.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import final

LOG = logging.getLogger(__name__)


@final
class OrphanGroups:
    """The process groups of ended workers that still had members."""

    def __init__(self) -> None:
        # Group number (the ended worker's pid): when what is left of it is
        # killed, on the time.monotonic() clock, or None for the master's exit.
        self._kill_at: dict[int, float | None] = {}

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
        """Return the seconds until a group is due for SIGKILL, or None."""
        due = [when for when in self._kill_at.values() if when is not None]
        if not due:
            return None
        return max(0.0, min(due) - time.monotonic())

    def kill_due(self) -> None:
        """Kill what is left of the groups whose grace has passed."""
        now = time.monotonic()
        for group, when in list(self._kill_at.items()):
            if when is not None and when <= now:
                del self._kill_at[group]
                _kill(group, "after SIGTERM and the graceful shutdown timeout")

    def kill_all(self) -> None:
        """Kill what is left of every group: the master exits."""
        groups = list(self._kill_at)
        self._kill_at.clear()
        for group in groups:
            _kill(group, "when the master exits")


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
