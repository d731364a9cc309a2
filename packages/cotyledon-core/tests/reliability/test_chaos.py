"""Chaos: a seeded random schedule of faults against a real manager.

Workers are killed, stopped and continued; the master gets storms of
SIGHUP, SIGTERM and SIGINT (many within a millisecond) during startup,
backoff, reload and shutdown; its hooks resize a service up and down. The
invariants are checked after every step. ``COTYLEDON_SEED`` replays a
schedule.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal

import pytest
from conftest import StartApp
from reliability_support import TALLY
from reliability_support import check_nothing_left
from reliability_support import check_resources_flat
from reliability_support import check_slots
from reliability_support import master_resources
from reliability_support import record_restarts
from reliability_support import scaled
from reliability_support import wait_settled
from reliability_support import with_seed

from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess

WORKER_FAULTS = ("kill", "kill", "stop", "cont", "hup_storm", "settle")
ENDINGS = ("startup", "running", "backoff", "reload", "shutdown")


def _expected(app: ManagerProcess) -> dict[str, int]:
    resized = [event for event in app.events if event.kind == "resized"]
    steady = resized[-1]["workers"] if resized else 2
    return {"steady": steady, "replaced": 1}


def _storm(pid: int, signals: list[int]) -> None:
    """Send every signal of ``signals`` to the master back to back.

    A pidfd keeps the storm on the master: once the master has exited and
    been reaped, its pid may belong to another process, and the rest of the
    storm is dropped.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        for signum in signals:
            try:
                signal.pidfd_send_signal(pidfd, signum)
            except ProcessLookupError:
                break
            TALLY.faults += 1
    finally:
        os.close(pidfd)


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
    """One run of the chaos manager, driven by one rng."""

    def __init__(self, app: ManagerProcess, rng: random.Random) -> None:
        self.app = app
        self.rng = rng
        self.stopped: set[int] = set()

    def pick_worker(self) -> int | None:
        live = sorted(self.app.live_workers().values())
        return self.rng.choice(live) if live else None

    def signal_worker(self, pid: int, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        TALLY.faults += 1

    def step(self, action: str) -> None:
        app = self.app
        if action == "kill":
            pid = self.pick_worker()
            if pid is not None:
                self.signal_worker(pid, signal.SIGKILL)
                self.stopped.discard(pid)
        elif action == "stop":
            pid = self.pick_worker()
            if pid is not None:
                self.signal_worker(pid, signal.SIGSTOP)
                self.stopped.add(pid)
        elif action == "cont":
            self.resume_all()
        elif action == "hup_storm":
            _storm(app.pid, [signal.SIGHUP] * self.rng.randint(1, 20))
        elif action == "settle":
            self.resume_all()
            wait_settled(app, lambda: _expected(app))
        check_slots(app)

    def resume_all(self) -> None:
        for pid in self.stopped:
            self.signal_worker(pid, signal.SIGCONT)
        self.stopped.clear()

    def end(self, ending: str) -> set[int]:
        """Stop the manager with a storm during ``ending``; return the exit
        statuses that the storm allows."""
        app, rng = self.app, self.rng
        if ending == "backoff":
            # Three quick deaths put the slot in backoff.
            for _ in range(3):
                mark = app.mark()
                pid = app.worker_pid("replaced", 0)
                self.signal_worker(pid, signal.SIGKILL)
                app.wait_event("worker_started", after=mark, service="replaced")
            self.signal_worker(app.worker_pid("replaced", 0), signal.SIGKILL)
        elif ending == "reload":
            _storm(app.pid, [signal.SIGHUP])
            app.wait_manager_event(ManagerEventKind.RELOADING)
        elif ending == "shutdown":
            _storm(app.pid, [signal.SIGTERM])
            app.wait_manager_event(ManagerEventKind.STOPPING)
        signals = _terminal_signals(rng)
        if ending == "shutdown":
            signals.insert(0, signal.SIGTERM)
        _storm(app.pid, signals)
        if rng.random() < 0.5:
            self.resume_all()
        if signal.SIGINT not in signals:
            return {0}
        # A SIGINT that arrives once the graceful stop has ended is ignored.
        return {0, 1} if ending == "shutdown" else {1}


def _run_life(start_app: StartApp, seed: int, steps: int) -> None:
    rng = random.Random(seed)
    app = start_app("chaos_app", env={"RELIABILITY_SEED": str(seed)})
    life = Life(app, rng)
    ending = rng.choice(ENDINGS)
    if ending == "startup":
        app.wait_event("worker_started")
        expected_status = life.end(ending)
    else:
        app.wait_ready()
        wait_settled(app, lambda: _expected(app))
        warm = master_resources(app.pid)
        for _ in range(steps):
            life.step(rng.choice(WORKER_FAULTS))
        life.resume_all()
        wait_settled(app, lambda: _expected(app))
        check_resources_flat(warm, master_resources(app.pid))
        expected_status = life.end(ending)
    status = app.wait_exit(timeout=30)
    record_restarts(app)
    assert status in expected_status, f"exit status after a storm during {ending}"
    check_nothing_left(app)


@pytest.mark.parametrize("life", range(scaled(3, 80)))
def test_chaos_schedule_keeps_invariants(start_app: StartApp, seed: int, life: int) -> None:
    try:
        _run_life(start_app, seed + life, steps=scaled(12, 40))
    except AssertionError as error:
        raise with_seed(seed + life, error) from error
