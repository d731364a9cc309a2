"""The service that each worker runs: serve HTTP from the shared socket."""

from __future__ import annotations

import logging
import os
import socket
from typing import Final

import cotyledon
from cotyledon.types import WorkerId

from .config import ConfigSource
from .server import CLIENT_TIMEOUT
from .server import MAX_DELAY_MS
from .server import SharedSocketServer

LOG = logging.getLogger(__name__)

STOP_POLL_INTERVAL: Final = 0.05
"""Seconds between the accept loop's checks for a stop request."""


class HttpWorker(cotyledon.Service):
    """Accepts connections from the listening socket that the master opened.

    On SIGTERM, ``terminate()`` stops accepting, waits for the requests in
    flight, and returns, and the worker exits. The connections that it has
    not accepted stay in the socket's backlog for the other workers.
    """

    name = "http"
    # The worker reports ready just before it accepts: a rolling reload
    # stops an old worker only once its replacement takes connections.
    announces_readiness = True
    # Room for a request whose client stalls once while sending and once
    # while reading (CLIENT_TIMEOUT each), plus the longest delay. The
    # master kills a worker that takes longer to stop.
    graceful_shutdown_timeout = 2 * CLIENT_TIMEOUT + MAX_DELAY_MS / 1000 + 1.0

    def __init__(self, worker_id: WorkerId, listener: socket.socket, config: ConfigSource) -> None:
        super().__init__(worker_id)
        self._label = config.current.label
        self._server = SharedSocketServer(listener, worker_id=worker_id, label=self._label)

    def run(self) -> None:
        LOG.info(
            "Worker %d (pid %d) serving http://%s:%d with label %r",
            self.worker_id,
            os.getpid(),
            *self._server.server_address[:2],
            self._label,
        )
        self.notify_ready()
        self._server.serve_forever(poll_interval=STOP_POLL_INTERVAL)

    def terminate(self) -> None:
        # shutdown() sets a flag, then waits for serve_forever() to return.
        # NOTE: socketserver documents shutdown() only for a serve_forever()
        # that runs. A terminate() that comes before run() serves still ends
        # the worker, because CPython 3.10 to 3.13 check the flag on entry.
        self._server.shutdown()
        LOG.info("Worker %d stopped accepting; finishing its requests", self.worker_id)
        self._server.server_close()
        LOG.info("Worker %d finished its requests", self.worker_id)
