"""Small programs started by the harness tests."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import cotyledon
from cotyledon.types import WorkerId
from cotyledon_testkit import report


def report_and_wait() -> None:
    """Report, start a child that ignores SIGTERM, then wait for SIGTERM."""
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(300)",
        ]
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    report("ready", child=child.pid)
    stop.wait()
    report("stopping")
    sys.exit(7)


def exit_at_once() -> None:
    """Exit with status 3 at once, without building a manager."""
    print("exiting now", flush=True)
    os._exit(3)


def leave_temp_file() -> None:
    """Make a temporary file, report where, and wait to be killed."""
    fd, path = tempfile.mkstemp()
    os.close(fd)
    report("temp", path=path, tmpdir=tempfile.gettempdir())
    time.sleep(300)


class Sleeper(cotyledon.Service):
    """Waits until terminated."""

    name = "sleeper"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()


def sleepers() -> None:
    """Run a manager of two Sleeper workers."""
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=5)
    manager.add(Sleeper, workers=2)
    manager.run()


def forkserver_sleepers() -> None:
    """Run a manager of two Sleeper workers started by a fork server, which
    listens on a Unix socket below TMPDIR."""
    manager = cotyledon.ServiceManager(
        graceful_shutdown_timeout=5, mp_context=multiprocessing.get_context("forkserver")
    )
    manager.add(Sleeper, workers=2)
    manager.run()


def chatty_log() -> None:
    """Log a warning, then more DEBUG lines than a wait error shows, report
    ``logged``, and wait to be killed."""
    log = logging.getLogger("chatty")
    log.warning("disk almost full")
    for index in range(60):
        log.debug("detail %d", index)
    log.info("all logged")
    report("logged")
    time.sleep(300)


EVENT_BURST = 200
"""How many events ``report_burst`` sends: many more than a Unix datagram
socket queues by default."""


def report_burst() -> None:
    """Report ``EVENT_BURST`` events, then create the file that BURST_DONE
    names, and wait to be killed."""
    for index in range(EVENT_BURST):
        report("tick", index=index)
    with open(os.environ["BURST_DONE"], "w"):
        pass
    time.sleep(300)


NOTIFY_BURST = 40
"""How many messages ``notify_burst`` sends: more than the kernel's default
queue of 10 datagrams (``net.unix.max_dgram_qlen``)."""


def notify_burst() -> None:
    """Send ``NOTIFY_BURST`` messages to NOTIFY_SOCKET, then report how many
    sends timed out."""
    address = os.environ["NOTIFY_SOCKET"]
    failed = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
        sender.settimeout(2.0)
        for index in range(NOTIFY_BURST):
            try:
                sender.sendto(f"STATUS=message {index}".encode(), address)
            except TimeoutError:
                failed += 1
    report("sent", failed=failed)
    time.sleep(300)
