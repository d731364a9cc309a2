"""SIGKILL of the master: every worker exits within a second.

A worker started by spawn or forkserver that is still starting when the
master dies can only notice once its own code runs: it gets the time a
worker takes to start on a loaded machine, then exits as quickly.
"""

from __future__ import annotations

import os
import random
import signal
from typing import Final

import pytest
from conftest import StartApp
from reliability_support import TALLY
from reliability_support import check_start_method
from reliability_support import is_live
from reliability_support import scaled
from reliability_support import start_method_params

from cotyledon import WorkerEventKind
from cotyledon_testkit import ManagerProcess

EXIT_BOUND: Final = 1.0
# An estimate of the longest start of a spawned worker on a loaded 2-core
# machine, plus EXIT_BOUND.
STARTING_BOUND: Final = 15.0


def _kill_master_when(app: ManagerProcess, rng: random.Random) -> str:
    moment = rng.choice(("starting", "ready", "reloading", "stopping"))
    if moment == "starting":
        app.wait_event("worker_started")
    else:
        app.wait_ready(timeout=30)
        if moment == "reloading":
            app.send_signal(signal.SIGHUP)
        elif moment == "stopping":
            app.send_signal(signal.SIGTERM)
    os.kill(app.pid, signal.SIGKILL)
    TALLY.faults += 1
    return moment


@pytest.mark.parametrize("round_", range(scaled(3, 15)))
@pytest.mark.parametrize("start_method", start_method_params())
def test_master_death_ends_every_worker(
    start_app: StartApp, seed: int, start_method: str, round_: int
) -> None:
    rng = random.Random(seed + round_)
    app = start_app("master_with_helper_app", start_method=start_method)
    moment = _kill_master_when(app, rng)
    status = app.wait_exit()
    # A graceful stop may be over before the kill lands: the master has then
    # reaped every worker, which the checks below confirm all the same.
    stopped_first = moment == "stopping" and status == 0
    assert stopped_first or status == -signal.SIGKILL, f"master killed while {moment}: {status}"
    check_start_method(app, start_method)
    app.receive()
    workers = {e.pid for e in app.worker_events()}
    # A worker reported ready had its loop running, and watching the master.
    running = {e.pid for e in app.worker_events(kind=WorkerEventKind.READY)}
    helper = next(e["pid"] for e in app.events if e.kind == "helper")

    # The helper holds copies of every descriptor of the master, so only the
    # master's pidfd can tell the workers of its death.
    assert is_live(helper), "the helper holding the master's descriptors must live"
    # A forked worker watches its master from its first instruction on.
    prompt = workers if start_method == "fork" else running
    app.wait_for(
        lambda: not any(is_live(pid) for pid in prompt),
        EXIT_BOUND,
        f"the workers to exit after the master died while {moment} (seed {seed + round_})",
        poll_interval=0.01,
    )
    app.wait_for(
        lambda: not any(is_live(pid) for pid in workers - prompt),
        STARTING_BOUND,
        f"the starting workers to exit after the master died while {moment} (seed {seed + round_})",
        poll_interval=0.01,
    )
    TALLY.checks += 1
