"""An HTTP/1.0 server on a listening socket that other processes share.

Each connection carries one request: with HTTP/1.0 the server closes the
connection after its response. A request in flight is therefore a
connection that this worker has accepted, and a graceful stop needs no
idle keep-alive connection to be closed.

``GET /?delay_ms=N`` waits N milliseconds (at most ``MAX_DELAY_MS``), then
returns a JSON object that names the worker that served it::

    {"worker_id": 0, "pid": 4242, "label": "default", "delay_ms": 20}
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import socket
import socketserver
import time
import urllib.parse
from http import HTTPStatus
from typing import Any
from typing import Final

LOG = logging.getLogger(__name__)

MAX_DELAY_MS: Final = 1000
"""The maximum delay that a request may ask for, in milliseconds."""

CLIENT_TIMEOUT: Final = 10.0
"""Seconds each read or write on a client's connection may take.

It bounds how long a stalled client can hold a worker that is stopping.
"""


class SharedSocketServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    """Serve each accepted connection in a thread of its own, from ``listener``.

    ``listener`` is a listening socket opened by another process, and this
    server never binds. ``server_close()`` closes this process's descriptor
    only, which leaves the socket listening for the others.

    ``serve_forever()`` accepts until ``shutdown()``; ``server_close()``
    then waits for every request in flight to finish, because the request
    threads are not daemon threads.
    """

    daemon_threads = False
    block_on_close = True

    def __init__(self, listener: socket.socket, *, worker_id: int, label: str) -> None:
        super().__init__(listener.getsockname(), RequestHandler, bind_and_activate=False)
        # TCPServer has made a socket of its own, still unbound: serve the
        # shared one instead.
        self.socket.close()
        self.socket = listener
        self.worker_id = worker_id
        self.label = label
        self.pid = os.getpid()

    def __repr__(self) -> str:
        host, port = self.server_address[:2]
        return f"<SharedSocketServer {host!r}:{port} worker_id={self.worker_id}>"


class RequestHandler(http.server.BaseHTTPRequestHandler):
    """Respond to ``GET /?delay_ms=N`` after N milliseconds, and with 404 to
    other paths."""

    server: SharedSocketServer
    protocol_version = "HTTP/1.0"
    server_version = "httpservice/1"
    timeout = CLIENT_TIMEOUT

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        if url.path != "/":
            self.send_error(HTTPStatus.NOT_FOUND, f"no resource at {url.path}")
            return
        try:
            delay_ms = parse_delay(url.query)
        except ValueError as exc:
            self.send_error(HTTPStatus.BAD_REQUEST, str(exc))
            return
        time.sleep(delay_ms / 1000)
        body = json.dumps(
            {
                "worker_id": self.server.worker_id,
                "pid": self.server.pid,
                "label": self.server.label,
                "delay_ms": delay_ms,
            }
        ).encode()
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # No access log: under load it would be most of the output.
        pass

    def log_message(self, format: str, *args: Any) -> None:
        LOG.warning(
            "Worker %d, client %s: %s", self.server.worker_id, self.address_string(), format % args
        )


def parse_delay(query: str) -> int:
    """Return the ``delay_ms`` of a query string, or 0 if it has none.

    Raises ValueError if it is not an integer from 0 to ``MAX_DELAY_MS``.
    """
    values = urllib.parse.parse_qs(query).get("delay_ms", ["0"])
    text = values[-1]
    try:
        delay_ms = int(text)
    except ValueError:
        raise ValueError(f"invalid delay_ms {text!r}: expected an integer") from None
    if not 0 <= delay_ms <= MAX_DELAY_MS:
        raise ValueError(f"invalid delay_ms {delay_ms}: expected 0 to {MAX_DELAY_MS}")
    return delay_ms
