"""An API whose workers are ready once their upstream accepts connections.

Each worker then sends heartbeats from its loop: a worker whose loop
stops for 2 s is stopped, killed if still alive 5 s later, and replaced.
The master serves its status on a control socket, for
``python -m cotyledon status|ready|live SOCKET``, and logs its last status
when it stops.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

import cotyledon
from cotyledon.types import WorkerId

LOG = logging.getLogger(__name__)
CONTROL_SOCKET = os.environ.get("API_CONTROL_SOCKET", "/run/app/control")
UPSTREAM = os.environ.get("API_UPSTREAM", "/run/app/upstream.sock")


def upstream_reachable() -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        try:
            connection.connect(UPSTREAM)
        except OSError:
            return False
    return True


class Api(cotyledon.Service):
    name = "api"
    announces_readiness = True
    graceful_shutdown_timeout = 5

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not upstream_reachable():
            if self.stopping.wait(0.1):
                return
        self.notify_ready()
        while not self.stopping.wait(0.5):
            self.heartbeat()  # after each request served, say

    def terminate(self) -> None:
        self.stopping.set()


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    manager = cotyledon.ServiceManager(control_socket=CONTROL_SOCKET)
    manager.add(Api, workers=2, startup_timeout=30, heartbeat_timeout=2)

    def log_status() -> None:
        # status() is a snapshot as of the call, from any thread or hook.
        LOG.info("Stopping; last status: %s", manager.status().summary())

    manager.register_hooks(on_terminate=log_status)
    manager.run()


if __name__ == "__main__":
    main()
