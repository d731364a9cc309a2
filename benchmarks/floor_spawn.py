"""The spawn floor: N children started by multiprocessing's spawn context.

Each child is a new interpreter that imports this module and reports
``run`` once, then sleeps until a signal ends it::

    python -m benchmarks.floor_spawn 64
"""

from __future__ import annotations

import multiprocessing
import signal
import sys

from benchmarks import channel


def child(worker_id: int) -> None:
    channel.report("run", worker_id, channel.cpu_time())
    while True:
        signal.pause()


def main() -> None:
    workers = int(sys.argv[1])
    channel.report("main", channel.MASTER_ID)
    context = multiprocessing.get_context("spawn")
    processes = []
    for worker_id in range(workers):
        process = context.Process(target=child, args=(worker_id,))
        process.start()
        processes.append(process)
    # Blocks until the children are gone; the driver ends them.
    for process in processes:
        process.join()


if __name__ == "__main__":
    main()
