"""Processes of a session, read from /proc (Linux)."""

from __future__ import annotations

import os

import attrs


@attrs.frozen
class ProcessInfo:
    """One process as /proc/PID/stat shows it."""

    pid: int
    ppid: int
    pgid: int
    state: str
    """``Z`` for a zombie, ``T`` for stopped; see proc(5)."""
    command: str


def read_process(pid: int) -> ProcessInfo | None:
    """Read /proc/PID/stat, or return None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            stat = stat_file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command is in parentheses and may itself hold spaces or ')'.
    command = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcessInfo(pid, int(fields[1]), int(fields[2]), fields[0], command)


def session_of(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            stat = stat_file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[3])


def live_processes_of_session(session_id: int) -> list[ProcessInfo]:
    """Return every process, zombies included, whose session is ``session_id``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        if session_of(pid) == session_id:
            info = read_process(pid)
            if info is not None:
                found.append(info)
    return found
