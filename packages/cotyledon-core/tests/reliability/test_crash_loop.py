"""Thousands of worker deaths in a row, on a shortened backoff."""

from __future__ import annotations

import itertools
import signal

from conftest import StartApp
from reliability_support import TALLY
from reliability_support import check_nothing_left
from reliability_support import check_resources_flat
from reliability_support import check_slots
from reliability_support import cpu_seconds
from reliability_support import master_resources
from reliability_support import record_restarts
from reliability_support import scaled
from reliability_support import wait_settled

from cotyledon import WorkerEventKind

DEATHS = scaled(300, 10_000)
WARM_UP = 50
# The backoff test's policy: 1 ms, doubling, up to 50 ms.
BACKOFF_CAP = 0.05
# Master CPU per death: a fork, a reap and a few log lines.
CPU_PER_DEATH = 0.01


def test_crash_loop_keeps_invariants_and_backoff(start_app: StartApp) -> None:
    app = start_app("crash_loop_app")
    app.wait_event("worker_exited", timeout=30, service="crasher")
    app.wait_for(
        lambda: len(app.worker_events("crasher", kind=WorkerEventKind.EXITED)) >= WARM_UP,
        60,
        f"{WARM_UP} deaths",
    )
    warm = master_resources(app.pid)
    check_slots(app)

    def enough() -> bool:
        check_slots(app)
        return len(app.worker_events("crasher", kind=WorkerEventKind.EXITED)) >= DEATHS

    app.wait_for(enough, timeout=max(60, DEATHS / 20), what=f"{DEATHS} deaths", poll_interval=0.2)
    now = master_resources(app.pid)
    deaths = len(app.worker_events("crasher", kind=WorkerEventKind.EXITED))
    TALLY.faults += deaths
    wait_settled(app, {"steady": 1})
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit()
    record_restarts(app)

    check_resources_flat(warm, now, workers=5)
    cpu_per_death = cpu_seconds(now.cpu_ticks - warm.cpu_ticks) / (deaths - WARM_UP)
    assert cpu_per_death < CPU_PER_DEATH
    assert status == 0
    check_nothing_left(app)


def test_crash_loop_restarts_keep_backoff(start_app: StartApp) -> None:
    env = {"RELIABILITY_WORKERS": "1", "RELIABILITY_MAX_DELAY": str(BACKOFF_CAP)}
    app = start_app("crash_loop_app", env=env)
    app.wait_for(
        lambda: len(app.worker_events("crasher", kind=WorkerEventKind.EXITED)) >= 40,
        60,
        "40 deaths",
    )
    app.send_signal(signal.SIGTERM)
    app.wait_exit()
    starts = [e.time for e in app.worker_events("crasher", kind=WorkerEventKind.STARTED)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    # From the tenth death on, every restart waits the capped delay, less
    # its jitter. Both times are read by the master, which handles a
    # worker's exit only after it has reported that worker's start, so the
    # gap between two starts is at least the delay, whatever the load.
    assert min(gaps[10:]) >= BACKOFF_CAP * 0.9
    check_nothing_left(app)
