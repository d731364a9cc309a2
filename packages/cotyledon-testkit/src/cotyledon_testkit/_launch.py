"""Entry point of a manager started by ``ManagerProcess``.

``python -m cotyledon_testkit._launch module:function [level]`` has the
kernel kill this process when the test process dies, sets up logging to
stderr from ``level`` up (a number, DEBUG by default), imports the module
and calls the function, which builds a manager and runs it.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import signal
import sys
from typing import Final

from cotyledon_testkit._harness import PARENT_PID_ENV

_PR_SET_PDEATHSIG: Final = 1
"""The prctl(2) option that sets the signal sent when the parent dies."""

PARENT_GONE_STATUS: Final = 70
"""The exit status of a launcher whose test process died before it started."""


def die_with_parent() -> None:
    """Have the kernel send SIGKILL to this process when its parent dies.

    On Linux only; elsewhere this does nothing, and a manager outlives a
    test process that is killed with SIGKILL. The signal is tied to the
    thread that started this process: a manager started from a thread that
    ends is killed then. If the parent died before the call, this process
    has already been re-parented and the kernel will never send the
    signal, so the launcher checks the parent's pid right after and exits.
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
        error = ctypes.get_errno()
        print(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(error)}", file=sys.stderr)
        return
    expected = os.environ.get(PARENT_PID_ENV)
    if expected is not None and os.getppid() != int(expected):
        print(
            f"the test process {expected} died before the manager started; exiting",
            file=sys.stderr,
            flush=True,
        )
        os._exit(PARENT_GONE_STATUS)


def main() -> None:
    die_with_parent()
    level = int(sys.argv[2]) if len(sys.argv) > 2 else logging.DEBUG
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s",
    )
    module_name, _, function_name = sys.argv[1].partition(":")
    module = importlib.import_module(module_name)
    getattr(module, function_name)()


if __name__ == "__main__":
    main()
