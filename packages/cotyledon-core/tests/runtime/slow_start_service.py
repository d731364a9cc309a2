"""A service whose module takes a while to import in a worker process.

A worker started by spawn or forkserver imports this module when it
unpickles its service, before it installs its own signal handlers. The
pause keeps it there long enough for a test to send it a signal. The
master imports the module first, then sets ``PAUSE_ENV`` for the processes
it starts. A forked worker has the module already, from its master.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Final

import cotyledon
from cotyledon.types import WorkerId
from cotyledon_testkit import report

PAUSE_ENV: Final = "SLOW_START_PAUSE"
"""The environment variable that contains the seconds the import takes."""

time.sleep(float(os.environ.get(PAUSE_ENV, "0")))


class SlowStart(cotyledon.Service):
    """Runs until terminated; reloads in place."""

    name = "slow-start"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        report("reload", service=self.name, worker_id=self.worker_id)
