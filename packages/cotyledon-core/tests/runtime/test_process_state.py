"""What the operating system shows of the master and its workers."""

from __future__ import annotations

import os
import time
from pathlib import Path

from runtime_support import StartApp
from runtime_support import live_worker_pids


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()


def _context_switches(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for line in (task / "status").read_text().splitlines():
            if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                total += int(line.split()[1])
    return total


def test_process_titles_name_master_and_workers(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)
    probes = live_worker_pids(app, "probe")

    def master_title() -> str | None:
        title = _cmdline(app.pid)
        return title if "master process" in title else None

    master = app.wait_for(master_title, what="the master's title")

    assert "_launch.py: master process [" in master
    assert _cmdline(probes[0]).endswith("probe worker(0)")
    assert _cmdline(probes[1]).endswith("probe worker(1)")


def test_workers_lead_their_own_process_groups(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)

    pids = live_worker_pids(app, "probe")

    assert [os.getpgid(pid) for pid in pids.values()] == list(pids.values())
    assert os.getpgid(app.pid) == app.pid


def test_idle_master_never_wakes_up(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_ready()
    _wait_until_asleep(app.pid)
    before = _context_switches(app.pid)

    # A measurement window, not a wait for a condition: the master must
    # stay asleep through all of it.
    time.sleep(1.0)
    after = _context_switches(app.pid)

    assert after == before


def _wait_until_asleep(pid: int, timeout: float = 10.0) -> None:
    """Wait until the master has gone to sleep after its last event.

    The last event is handled some microseconds after the harness sees it;
    the master has settled once its count stays the same for 0.1 s.
    """
    deadline = time.monotonic() + timeout
    previous = _context_switches(pid)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current = _context_switches(pid)
        if current == previous:
            return
        previous = current
    raise AssertionError(f"the master {pid} kept waking up for {timeout} s")


def test_master_runs_a_single_thread(start_app: StartApp) -> None:
    app = start_app("basic_app")
    app.wait_events("run", 3)

    threads = list(Path(f"/proc/{app.pid}/task").iterdir())

    assert len(threads) == 1
