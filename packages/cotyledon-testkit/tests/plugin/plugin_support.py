"""Helpers of the plugin tests."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from cotyledon_testkit import live_processes_of_session

APPS_DIR = Path(__file__).parent
"""The folder of ``plugin_apps.py``, for the ``sys_path`` of inner tests."""

PIDS_FILE = "pids.jsonl"
"""The file, in the pytester folder, where inner tests write their pids."""


def record_pids_source(folder: Path) -> str:
    """Return the source of a ``record_pids(**pids)`` function for inner
    test files, which appends the pids to ``PIDS_FILE`` in ``folder``."""
    path = str(folder / PIDS_FILE)
    return f"""
import json


def record_pids(**pids):
    with open({path!r}, "a") as pids_file:
        pids_file.write(json.dumps(pids) + "\\n")
"""


def read_pids(folder: Path) -> list[dict[str, Any]]:
    """Return what the inner tests recorded, one mapping per call."""
    path = folder / PIDS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def alive_in_session(session: int) -> list[int]:
    """Return the pids of the processes of a session that are not zombies."""
    return [p.pid for p in live_processes_of_session(session) if p.state != "Z"]


def wait_for_empty_session(session: int, timeout: float) -> list[int]:
    """Poll /proc until no live process is left in the session; return the
    pids still alive when it is empty or when ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        alive = alive_in_session(session)
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.05)
