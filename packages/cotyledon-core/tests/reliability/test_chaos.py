"""Chaos: a seeded random schedule of faults against a real manager.

Workers are killed, stopped and continued; the master gets storms of
SIGHUP, SIGTERM and SIGINT (many within a millisecond); its hooks resize a
service up and down. Each life ends with a storm that contains a stop signal,
sent during one of the manager's phases: startup, running, a slot's
backoff, a reload, or a graceful stop. Every phase is checked to have been
under way when the storm was sent. The invariants are checked after every
step. Each scenario runs with each start method. ``COTYLEDON_SEED``
replays a schedule.
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Callable
from typing import Final

import pytest
from conftest import StartApp
from reliability_support import check_nothing_left
from reliability_support import check_resources_flat
from reliability_support import check_slots
from reliability_support import check_start_method
from reliability_support import master_resources
from reliability_support import record_restarts
from reliability_support import scaled
from reliability_support import send_storm
from reliability_support import signal_process
from reliability_support import start_method_params
from reliability_support import wait_settled
from reliability_support import with_seed

from cotyledon import WorkerEventKind
from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import WorkerLifecycleEvent

WORKER_FAULTS: Final = ("kill", "kill", "stop", "cont", "hup_storm", "settle")
ENDINGS: Final = ("startup", "running", "backoff", "reload", "shutdown")

# The chaos apps widen the phase of a life's ending by this pause (seconds),
# so that a storm sent once the phase has begun lands within it even when
# the test process is slow to send it.
PHASE_PAUSE: Final = "0.5"
WIDENED_PHASE: Final = {
    "startup": {"RELIABILITY_START_SECONDS": PHASE_PAUSE},
    "reload": {"RELIABILITY_RELOAD_SECONDS": PHASE_PAUSE},
    "shutdown": {"RELIABILITY_TERMINATE_SECONDS": PHASE_PAUSE},
}

# A storm during a slot's backoff waits for a restart delay at least this
# long (seconds): the chaos apps cap their backoff at 0.4 s.
BACKOFF_STORM_DELAY: Final = 0.3

# Steps of one life, by start method: spawn and forkserver workers are
# slower to start, so their lives are shorter.
STEPS: Final = {"fork": scaled(12, 40), "spawn": scaled(6, 20), "forkserver": scaled(8, 25)}
LIVES: Final = scaled(1, 2)
"""Lives per start method and ending."""


def _expected(app: ManagerProcess) -> dict[str, int]:
    resized = [event for event in app.events if event.kind == "resized"]
    steady = resized[-1]["workers"] if resized else 2
    return {"steady": steady, "replaced": 1}


def _terminal_signals(rng: random.Random) -> list[int]:
    choice = rng.choice(("term", "int", "mixed"))
    count = rng.randint(1, 30)
    if choice == "term":
        pool: list[int] = [signal.SIGTERM, signal.SIGHUP]
    elif choice == "int":
        pool = [signal.SIGINT, signal.SIGHUP]
    else:
        pool = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP]
    signals: list[int] = [rng.choice(pool) for _ in range(count)]
    # At least one stop signal, or the storm does not end the manager.
    signals.append(rng.choice([s for s in pool if s != signal.SIGHUP]))
    return signals


class Life:
    """One run of a chaos manager, driven by one rng.

    ``settle`` waits until every slot has settled and checks the invariants.
    """

    def __init__(
        self, app: ManagerProcess, rng: random.Random, settle: Callable[[], object]
    ) -> None:
        self.app = app
        self.rng = rng
        self.settle = settle
        self.stopped: set[int] = set()

    def pick_worker(self) -> int | None:
        live = sorted(self.app.live_workers().values())
        return self.rng.choice(live) if live else None

    def step(self, action: str) -> None:
        app = self.app
        if action == "kill":
            pid = self.pick_worker()
            if pid is not None:
                signal_process(pid, signal.SIGKILL)
                self.stopped.discard(pid)
        elif action == "stop":
            pid = self.pick_worker()
            if pid is not None:
                signal_process(pid, signal.SIGSTOP)
                self.stopped.add(pid)
        elif action == "cont":
            self.resume_all()
        elif action == "hup_storm":
            send_storm(app.pid, [signal.SIGHUP] * self.rng.randint(1, 20))
        elif action == "settle":
            self.resume_all()
            self.settle()
        check_slots(app)

    def resume_all(self) -> None:
        for pid in self.stopped:
            signal_process(pid, signal.SIGCONT)
        self.stopped.clear()

    def end(self, ending: str) -> set[int]:
        """Stop the manager with a storm during ``ending``, check that the
        phase was under way when the storm was sent, and return the exit
        statuses that the storm allows."""
        app, rng = self.app, self.rng
        mark = app.mark()
        backoff_exit: WorkerLifecycleEvent | None = None
        if ending == "backoff":
            backoff_exit = self.put_in_backoff("replaced", 0)
        elif ending == "reload":
            send_storm(app.pid, [signal.SIGHUP])
            app.wait_manager_event(ManagerEventKind.RELOADING, after=mark)
        elif ending == "shutdown":
            send_storm(app.pid, [signal.SIGTERM])
            app.wait_manager_event(ManagerEventKind.STOPPING, after=mark)
        signals = _terminal_signals(rng)
        sent_at = time.monotonic()
        send_storm(app.pid, signals)
        if rng.random() < 0.5:
            self.resume_all()
        app.wait_exit(timeout=30)
        app.receive()
        if ending == "startup":
            ready = app.manager_events(ManagerEventKind.READY)
            assert not ready or ready[0].time > sent_at, "the storm came after the startup"
        elif backoff_exit is not None:
            restarted = app.worker_events(
                "replaced", 0, WorkerEventKind.STARTED, after=backoff_exit.index
            )
            assert not restarted or restarted[0].time > sent_at, "the storm came after the backoff"
        elif ending == "reload":
            reloaded = app.manager_events(ManagerEventKind.RELOADED, after=mark)
            assert not reloaded or reloaded[0].time > sent_at, "the storm came after the reload"
        elif ending == "shutdown":
            exits = app.worker_events(kind=WorkerEventKind.EXITED, after=mark)
            assert any(e.time > sent_at for e in exits), "the storm came after the graceful stop"
        if signal.SIGINT not in signals:
            return {0}
        # The last worker of a graceful stop may end before the master reads
        # a SIGINT of the storm, and the master then ignores that SIGINT.
        return {0, 1} if ending == "shutdown" else {1}

    def put_in_backoff(self, service: str, worker_id: int) -> WorkerLifecycleEvent:
        """Kill the worker of a slot until the master delays its restart by
        at least ``BACKOFF_STORM_DELAY``; return that exit's event."""
        app = self.app
        for _ in range(12):
            mark = app.mark()
            pid = app.wait_for(
                lambda: app.live_workers(service).get((service, worker_id)),
                what=f"a live worker {service}({worker_id})",
            )
            signal_process(pid, signal.SIGKILL)
            exit_event = app.wait_worker_exited(service, worker_id, pid=pid, after=mark)
            if _restart_delay(app, f"{service}({worker_id})", pid) >= BACKOFF_STORM_DELAY:
                return exit_event
        raise AssertionError(f"{service}({worker_id}) never backed off for {BACKOFF_STORM_DELAY} s")


def _restart_delay(app: ManagerProcess, worker: str, pid: int) -> float:
    """Return the delay before the restart that followed the death of
    ``pid``, as the master logged it."""
    logged = re.compile(rf"{re.escape(worker)} pid {pid} .* restarting it (now|in ([0-9.]+) s)")
    found = app.wait_for(
        lambda: logged.search(app.log_text()),
        what=f"the master to log when it restarts {worker} after pid {pid}",
        poll_interval=0.01,
    )
    return float(found.group(2) or 0)


def _run_life(
    app: ManagerProcess,
    life: Life,
    *,
    ending: str,
    steps: int,
    start_method: str,
) -> None:
    rng = life.rng
    app.wait_event("worker_started")
    check_start_method(app, start_method)
    if ending == "startup":
        expected_status = life.end(ending)
    else:
        app.wait_ready()
        life.settle()
        warm = master_resources(app.pid)
        warm_workers = len(app.live_workers())
        for _ in range(steps):
            life.step(rng.choice(WORKER_FAULTS))
        life.resume_all()
        life.settle()
        # The hooks may have resized a service up since the warm sample.
        added = max(0, len(app.live_workers()) - warm_workers)
        check_resources_flat(warm, master_resources(app.pid), workers=added)
        expected_status = life.end(ending)
    status = app.wait_exit(timeout=30)
    record_restarts(app)
    assert status in expected_status, f"exit status after a storm during {ending}"
    check_nothing_left(app)


@pytest.mark.parametrize("life", range(LIVES))
@pytest.mark.parametrize("ending", ENDINGS)
@pytest.mark.parametrize("start_method", start_method_params())
def test_chaos_schedule_keeps_invariants(
    start_app: StartApp, seed: int, start_method: str, ending: str, life: int
) -> None:
    life_seed = seed + life
    env = {"RELIABILITY_SEED": str(life_seed), **WIDENED_PHASE.get(ending, {})}
    app = start_app("chaos_app", env=env, start_method=start_method)
    chaos = Life(app, random.Random(life_seed), lambda: wait_settled(app, lambda: _expected(app)))
    try:
        _run_life(app, chaos, ending=ending, steps=STEPS[start_method], start_method=start_method)
    except AssertionError as error:
        raise with_seed(life_seed, error) from error
