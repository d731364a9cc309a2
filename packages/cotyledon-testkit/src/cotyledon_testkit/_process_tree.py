"""Processes of a session, read from /proc (Linux)."""

from __future__ import annotations

import os
from collections.abc import Sequence

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
    """The command name (at most 15 characters); ``read_command_line`` has more."""


def _read_stat(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            return stat_file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None


def read_process(pid: int) -> ProcessInfo | None:
    """Read /proc/PID/stat, or return None if the process is gone."""
    stat = _read_stat(pid)
    if stat is None:
        return None
    # The command is in parentheses and may itself hold spaces or ')'.
    command = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return ProcessInfo(pid, int(fields[1]), int(fields[2]), fields[0], command)


def read_command_line(pid: int) -> str | None:
    """Return the command line of a process (its title, once a worker has
    set one), or None if it is gone or has none, as a zombie has none."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline_file:
            raw = cmdline_file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    text = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    return text or None


def session_of(pid: int) -> int | None:
    """Return the session id of a process, or None if it is gone."""
    stat = _read_stat(pid)
    if stat is None:
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


def format_process_tree(processes: Sequence[ProcessInfo], indent: str = "  ") -> str:
    """Render processes as a tree, each child under its parent, one a line.

    A process whose parent is not in ``processes`` is a root, such as a
    worker whose master has died.
    """
    pids = {process.pid for process in processes}
    children: dict[int, list[ProcessInfo]] = {}
    roots = []
    for process in sorted(processes, key=lambda p: p.pid):
        if process.ppid in pids and process.ppid != process.pid:
            children.setdefault(process.ppid, []).append(process)
        else:
            roots.append(process)
    lines: list[str] = []

    def render(process: ProcessInfo, depth: int) -> None:
        command = read_command_line(process.pid) or process.command
        lines.append(
            f"{indent * (depth + 1)}{process.pid} {process.state} pgid={process.pgid} {command}"
        )
        for child in children.get(process.pid, []):
            render(child, depth + 1)

    for root in roots:
        render(root, 0)
    return "\n".join(lines)
