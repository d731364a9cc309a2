"""Small programs started by the harness tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

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
    print("exiting now", flush=True)
    os._exit(3)
