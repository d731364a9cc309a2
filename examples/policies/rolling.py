"""A web service whose workers are replaced one at a time on SIGHUP.

A worker reads its greeting from ``WEB_CONFIG`` as it starts, so a reload
replaces the workers. Each replacement is ready before the old worker of
its slot is stopped, and the next slot's replacement starts only once that
old worker has exited: the service runs at most 4 processes for its 3
workers.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import cotyledon
from cotyledon.types import WorkerId

LOG = logging.getLogger(__name__)
CONFIG = Path(os.environ.get("WEB_CONFIG", "web.conf"))


class Web(cotyledon.Service):
    name = "web"
    announces_readiness = True

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self.stopping = threading.Event()

    def run(self) -> None:
        greeting = CONFIG.read_text().strip() if CONFIG.exists() else "hello"
        LOG.info("Worker %d serves with greeting %r", self.worker_id, greeting)
        self.notify_ready()
        self.stopping.wait()

    def terminate(self) -> None:
        self.stopping.set()


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    manager = cotyledon.ServiceManager()
    manager.add(Web, workers=3, reload="rolling", startup_timeout=30)
    manager.run()


if __name__ == "__main__":
    main()
