"""The listening socket that the master opens and every worker inherits.

The master binds and listens before ``ServiceManager.run()``, so each
worker it forks has a descriptor of the same socket, with one accept queue
(the backlog) for all of them. The master keeps its own descriptor open
until it exits. While a worker is replaced, reloaded or killed, the
connections that no worker has accepted yet stay in that queue, and the
other workers, or the replacement, accept them: a reload fails no request.

The alternative, one socket per worker bound with SO_REUSEPORT, gives each
socket its own accept queue, and the kernel assigns each new connection to
one of them by a hash of its addresses. When a worker exits, its socket
closes, and Linux resets the connections still waiting in its queue, unless
the ``net.ipv4.tcp_migrate_req`` sysctl (Linux 5.14 and later) moves them
to another socket. Every graceful reload would then fail a few requests.

The socket is non-blocking. Every worker waits for the same connections,
the kernel wakes them all, and all but one find nothing to accept: a
blocking ``accept()`` would then hang until the next connection, and a
worker asked to stop would not notice. The flag belongs to the socket
that all the descriptors share, so the master sets it once for everyone.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Final

LOOPBACK: Final = "127.0.0.1"


def open_listener(port: int) -> socket.socket:
    """Bind a non-blocking TCP socket to ``port`` on 127.0.0.1 and listen.

    With port 0 the kernel chooses a free port, which
    ``listener.getsockname()[1]`` returns. The backlog is the largest the kernel
    allows (``net.core.somaxconn`` caps it), because every connection that
    arrives while no worker accepts waits in it.
    """
    listener = socket.create_server((LOOPBACK, port), backlog=socket.SOMAXCONN)
    listener.setblocking(False)
    return listener


def write_port_file(path: Path, port: int) -> None:
    """Write ``port`` and a newline to ``path`` in one step, so that a reader
    never sees half of it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(f"{port}\n", encoding="ascii")
    os.replace(temporary, path)
