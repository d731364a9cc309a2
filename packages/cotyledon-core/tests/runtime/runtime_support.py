"""Helpers of the runtime tests."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import ProbeEvent
from cotyledon_testkit._process_tree import read_process

APPS_DIR = Path(__file__).parent

StartApp = Callable[..., ManagerProcess]


def is_running(pid: int) -> bool:
    """Tell whether a process exists and is not a zombie."""
    info = read_process(pid)
    return info is not None and info.state != "Z"


def cpu_seconds(pid: int) -> float | None:
    """Return the CPU time that a process has used, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            stat = stat_file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_group_members(group: int) -> set[int]:
    """Return the pids of the live processes in process group ``group``."""
    members = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            info = read_process(int(name))
            if info is not None and info.pgid == group and info.state != "Z":
                members.add(info.pid)
    return members


def run_events(harness: ManagerProcess, service: str, after: int = 0) -> list[ProbeEvent]:
    return [e for e in harness.events[after:] if e.kind == "run" and e["service"] == service]


def live_worker_pids(harness: ManagerProcess, service: str) -> dict[int, int]:
    """Map worker id to pid for the latest run of each worker of ``service``."""
    latest: dict[int, int] = {}
    for event in run_events(harness, service):
        latest[event["worker_id"]] = event.pid
    return latest
