"""Reaping of adopted orphans, for a master that runs as PID 1.

In a container, the master is often PID 1: the kernel makes it the parent
of every orphan in the container, and their zombies stay until it reaps
them. The master reaps them without taking the exit status of any of its
own workers. It looks at each exited child first without reaping it
(``WNOWAIT``). A worker goes to the spawner, which reaps it by pid, and
the master reaps every other child itself.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable


def is_init() -> bool:
    """Tell whether this process is PID 1, the reaper of orphans."""
    return os.getpid() == 1


def reap_adopted(is_worker: Callable[[int], bool], reap_workers: Callable[[], None]) -> int:
    """Reap every exited child that is not a worker, and return their number.

    ``reap_workers`` is called when an exited worker comes first, so that
    the spawner reaps it by pid, keeping its status, and the loop reaches
    the children after it.
    """
    if not hasattr(os, "waitid") or not hasattr(os, "WNOWAIT"):
        return 0
    reaped = 0
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return reaped
        if info is None:
            return reaped
        pid = info.si_pid
        if is_worker(pid):
            reap_workers()
            if is_worker(pid):
                return reaped  # still not reaped, so the next wake-up retries
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        reaped += 1
