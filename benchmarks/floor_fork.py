"""The fork floor: N children started with ``os.fork()``, each reporting once.

It is the least that any forking supervisor does to start N workers of an
interpreter that is already running: no pipes, no bookkeeping, no
supervision. Each child reports ``run`` and sleeps until a signal ends it::

    python -m benchmarks.floor_fork 64
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable

from benchmarks import channel


def _report_run(worker_id: int) -> None:
    channel.report("run", worker_id, channel.cpu_time())


def fork_children(start: Callable[[int], None]) -> None:
    """Fork the number of children that the command line gives; each calls
    ``start`` with its worker id, then sleeps until a signal ends it."""
    workers = int(sys.argv[1])
    channel.report("main", channel.MASTER_ID)
    for worker_id in range(workers):
        if os.fork() == 0:
            try:
                start(worker_id)
                while True:
                    signal.pause()
            finally:
                os._exit(0)
    # Blocks until the children are gone; the driver ends them.
    while True:
        try:
            os.wait()
        except ChildProcessError:
            return


def main() -> None:
    fork_children(_report_run)


if __name__ == "__main__":
    main()
