"""SIGKILL of the master: every worker exits within a second."""

from __future__ import annotations

import os
import random
import signal

import pytest
from conftest import StartApp
from reliability_support import TALLY
from reliability_support import is_live
from reliability_support import scaled

from cotyledon_testkit import ManagerProcess

EXIT_BOUND = 1.0


def _kill_master_when(app: ManagerProcess, rng: random.Random) -> str:
    moment = rng.choice(("starting", "ready", "reloading", "stopping"))
    if moment == "starting":
        app.wait_event("worker_started")
    else:
        app.wait_ready()
        if moment == "reloading":
            app.send_signal(signal.SIGHUP)
        elif moment == "stopping":
            app.send_signal(signal.SIGTERM)
    os.kill(app.pid, signal.SIGKILL)
    TALLY.faults += 1
    return moment


@pytest.mark.parametrize("round_", range(scaled(3, 60)))
def test_master_death_ends_every_worker(start_app: StartApp, seed: int, round_: int) -> None:
    rng = random.Random(seed + round_)
    app = start_app("master_with_helper_app")
    moment = _kill_master_when(app, rng)
    assert app.wait_exit() == -signal.SIGKILL
    app.receive()
    workers = [e.pid for e in app.worker_events()]
    helper = next(e["pid"] for e in app.events if e.kind == "helper")

    # The helper holds copies of every descriptor of the master, so only the
    # master's pidfd can tell the workers of its death.
    assert is_live(helper), "the helper holding the master's descriptors must live"
    app.wait_for(
        lambda: not any(is_live(pid) for pid in workers),
        EXIT_BOUND,
        f"the workers to exit after the master died while {moment} (seed {seed + round_})",
        poll_interval=0.01,
    )
    TALLY.checks += 1
