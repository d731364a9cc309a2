"""The thread floor: the fork floor, with the two threads of a worker.

A worker of either cotyledon starts two threads: one calls its service's
``run()``, and one waits for the master's exit, so that the worker ends
when its master is gone even while ``run()`` never returns. Its master
has imported ``threading`` and ``logging``, whose after-fork handlers
every child runs. This parent imports both and opens a pidfd of itself,
then forks N children with ``os.fork()``. Each child starts a thread that
waits on that pidfd and exits once the parent has, then reports ``run``
from a second thread, and sleeps until a signal ends it::

    python -m benchmarks.floor_thread 64

It is the least that a worker with the contract of ``cotyledon.Service``
costs, with no supervision at all.
"""

from __future__ import annotations

import logging  # noqa: F401 - for its after-fork handler, which each child runs
import os
import select
import threading

from benchmarks import channel
from benchmarks.floor_fork import fork_children


def _watch_parent(parent_fd: int) -> None:
    select.select([parent_fd], [], [])
    os._exit(0)


def _report_run(worker_id: int) -> None:
    channel.report("run", worker_id, channel.cpu_time())


def main() -> None:
    parent_fd = os.pidfd_open(os.getpid())

    def start(worker_id: int) -> None:
        threading.Thread(target=_watch_parent, args=(parent_fd,), daemon=True).start()
        threading.Thread(target=_report_run, args=(worker_id,), daemon=True).start()

    fork_children(start)


if __name__ == "__main__":
    main()
