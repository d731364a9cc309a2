"""The application of every cotyledon scenario, for either implementation.

It uses the public API that this project and cotyledon 2.2.0 share, so the
driver runs this same file with the interpreter of either virtual
environment::

    python -m benchmarks.scenario_app --workers 16 --mode serve

Each worker reports ``run`` as the first thing ``run()`` does, and
``reload`` from ``reload()``. The master reports ``main`` just before
``ServiceManager.run()``, and ``dead`` from its ``on_dead_worker`` hook. In
``crash`` mode, ``run()`` raises right after its report.
"""

from __future__ import annotations

import argparse
import threading

import cotyledon
from benchmarks import channel
from cotyledon import types


class CrashLoopError(RuntimeError):
    """Raised by run() in crash mode."""


class BenchService(cotyledon.Service):
    name = "bench"

    def __init__(self, worker_id: types.WorkerId, mode: str) -> None:
        super().__init__(worker_id)
        self._mode = mode
        self._stopping = threading.Event()

    def run(self) -> None:
        channel.report("run", self.worker_id, channel.cpu_time())
        if self._mode == "crash":
            raise CrashLoopError("run() fails on purpose: crash-loop scenario")
        self._stopping.wait()

    def terminate(self) -> None:
        self._stopping.set()

    def reload(self) -> None:
        channel.report("reload", self.worker_id)


def _on_dead_worker(service_id: types.ServiceId, worker_id: types.WorkerId, code: int) -> None:
    channel.report("dead", worker_id, str(code))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--mode", choices=("serve", "crash"), default="serve")
    options = parser.parse_args()
    # The defaults of both implementations, as users run them.
    manager = cotyledon.ServiceManager()
    manager.add(BenchService, workers=options.workers, args=(options.mode,))
    manager.register_hooks(on_dead_worker=_on_dead_worker)
    channel.report("main", channel.MASTER_ID)
    manager.run()


if __name__ == "__main__":
    main()
