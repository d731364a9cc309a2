"""The thread floor: the fork floor, with ``run()`` in a thread.

A worker of either cotyledon calls its service's ``run()`` in a thread of
its own, and its master has imported ``threading`` and ``logging``, whose
after-fork handlers every child runs. This parent imports both, forks N
children with ``os.fork()``, and each child reports ``run`` from a new
``threading.Thread``, then sleeps until a signal ends it::

    python -m benchmarks.floor_thread 64

It is the least that a worker with the contract of ``cotyledon.Service``
costs, with no supervision at all.
"""

from __future__ import annotations

import logging  # noqa: F401 - for its after-fork handler, which each child runs
import threading

from benchmarks import channel
from benchmarks.floor_fork import fork_children


def _report_run(worker_id: int) -> None:
    channel.report("run", worker_id, channel.cpu_time())


def _start(worker_id: int) -> None:
    threading.Thread(target=_report_run, args=(worker_id,), daemon=True).start()


def main() -> None:
    fork_children(_start)


if __name__ == "__main__":
    main()
