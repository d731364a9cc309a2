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
import os
import signal
import sys
import threading

from benchmarks import channel


def _run(worker_id: int) -> None:
    channel.report("run", worker_id, channel.cpu_time())


def child(worker_id: int) -> None:
    threading.Thread(target=_run, args=(worker_id,), daemon=True).start()
    while True:
        signal.pause()


def main() -> None:
    workers = int(sys.argv[1])
    channel.report("main", channel.MASTER_ID)
    for worker_id in range(workers):
        if os.fork() == 0:
            try:
                child(worker_id)
            finally:
                os._exit(0)
    # Blocks until the children are gone; the driver ends them.
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


if __name__ == "__main__":
    main()
