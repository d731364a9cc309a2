"""The event channel between the measured processes and the driver.

The driver binds a Unix datagram socket and names it in the environment of
every process it starts. A process reports an event by taking
``time.monotonic()`` and sending it in one datagram. On Linux that clock is
CLOCK_MONOTONIC, which every process of the machine shares. The time is
taken before the send, so a send that waits for room in the socket's queue
does not delay the timestamp.

This module is imported by the scenario application under either
cotyledon and by the floors, so it uses the standard library only and
stays small: its import is part of what the startup figures measure.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Final

SOCKET_ENV: Final = "COTYBENCH_SOCKET"
"""The path of the driver's socket."""

RUN_ENV: Final = "COTYBENCH_RUN"
"""The token of the current run; the driver drops events of other runs."""

MASTER_ID: Final = -1
"""The worker id that a master or a floor's parent reports with."""

_sender: socket.socket | None = None
_sender_pid = 0


def cpu_time() -> str:
    """Return the CPU time of this process so far, every thread, as a report's detail.

    A forked child starts from zero, so in a worker's first report this is
    what its start cost it.
    """
    return repr(time.process_time())


def report(kind: str, worker_id: int, detail: str = "") -> None:
    """Send the event ``kind`` of ``worker_id``, timestamped now.

    Does nothing when the process was not started by the driver.
    """
    now = time.monotonic()
    global _sender, _sender_pid  # noqa: PLW0603
    path = os.environ.get(SOCKET_ENV)
    if not path:
        return
    pid = os.getpid()
    if _sender is None or _sender_pid != pid:
        # A forked child gets a socket of its own rather than sharing its
        # parent's.
        _sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _sender_pid = pid
    run = os.environ.get(RUN_ENV, "")
    message = f"{run} {kind} {worker_id} {pid} {now!r} {detail}"
    _sender.sendto(message.encode(), path)
