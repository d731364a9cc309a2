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

from benchmarks import channel


def main() -> None:
    workers = int(sys.argv[1])
    channel.report("main", channel.MASTER_ID)
    for worker_id in range(workers):
        if os.fork() == 0:
            try:
                channel.report("run", worker_id, channel.cpu_time())
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


if __name__ == "__main__":
    main()
