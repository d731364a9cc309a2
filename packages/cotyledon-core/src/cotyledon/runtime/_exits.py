"""Exit statuses: how a worker ended, in words, and SystemExit codes."""

from __future__ import annotations

import signal
import sys


def signal_name(number: int) -> str:
    """Return the name of a signal (``SIGKILL``), or its number if unknown."""
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def describe_exit(exit_code: int) -> str:
    """Describe a ``multiprocessing`` exit code: ``exited with status 3`` or
    ``was killed by SIGKILL``."""
    if exit_code < 0:
        return f"was killed by {signal_name(-exit_code)}"
    return f"exited with status {exit_code}"


def status_of_system_exit(exc: SystemExit) -> int:
    """Return the process status that ``exc`` stands for, as Python does.

    None is 0, an int is itself, anything else is printed to stderr and
    gives 1.
    """
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1
