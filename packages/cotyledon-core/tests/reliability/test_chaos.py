"""Chaos: a seeded random schedule of faults against a real manager.

Workers are killed, stopped and continued; the master gets storms of
SIGHUP, SIGTERM and SIGINT (many within a millisecond); its hooks resize a
service up and down. Each life ends with a storm that contains a stop signal,
sent during one of the manager's phases: startup, running, a slot's
backoff, a reload, or a graceful stop. Every phase is checked to have been
under way when the storm was sent. The invariants are checked after every
step. Each scenario runs with each start method, and once more with the
supervision policies on. ``COTYLEDON_SEED`` replays a schedule.
"""

from __future__ import annotations

import random
import re
import signal
import time
from collections.abc import Callable
from collections.abc import Collection
from pathlib import Path
from typing import Final

import pytest
from conftest import StartApp
from reliability_support import check_finished_slots
from reliability_support import check_nothing_left
from reliability_support import check_slots
from reliability_support import check_start_method
from reliability_support import master_resources
from reliability_support import method_matrix
from reliability_support import record_restarts
from reliability_support import scaled
from reliability_support import send_storm
from reliability_support import signal_process
from reliability_support import start_method_params
from reliability_support import wait_resources_flat
from reliability_support import wait_settled
from reliability_support import wait_settled_by_status
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
# Seconds until every initial worker is ready: several startup timeouts (5 s)
# in a row, each followed by the start of a spawned worker.
READY_TIMEOUT: Final = 60.0

# Steps of one life, by start method: spawn and forkserver workers are
# slower to start, so their lives are shorter.
STEPS: Final = {"fork": scaled(12, 40), "spawn": scaled(6, 20), "forkserver": scaled(8, 25)}
LIVES: Final = scaled(1, 2)
"""Lives per start method and ending, without the policies. With them,
each pair of an ending and a start method runs once."""

# The services of ``policy_chaos_app``: ``announcing`` reloads by rolling
# replacement, and a finished slot ended with one of these statuses.
ROLLING: Final = ("announcing",)
FINISH_STATUSES: Final = {"announcing": (0, 3), "quitter": (0, 3)}
POLICY_SERVICES: Final = {
    "announcing": {"running"},
    "replaced": {"running"},
    "quitter": {"running", "finished"},
    "doomed": {"given-up"},
}


def _expected(app: ManagerProcess) -> dict[str, int]:
    resized = [event for event in app.events if event.kind == "resized"]
    steady = resized[-1]["workers"] if resized else 2
    return {"steady": steady, "replaced": 1}


def _allowed_statuses(signals: list[int], *, stopping: bool) -> set[int]:
    """Return the exit statuses of a master that gets the storm ``signals``.

    ``stopping`` is true when the master is in a graceful stop that lasts
    longer than the storm. A SIGINT that comes first, or during such a
    stop, makes the master exit 1. A SIGINT that follows a SIGTERM of the
    same storm races the graceful stop that the SIGTERM started: the last
    worker may end before the master reads the SIGINT, which the master
    then ignores.
    """
    stops = [signum for signum in signals if signum != signal.SIGHUP]
    if signal.SIGINT not in stops:
        return {0}
    if stops[0] == signal.SIGTERM and not stopping:
        return {0, 1}
    return {1}


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

    ``settle`` waits until every slot has settled and checks the
    invariants. ``rolling`` names the services that reload by rolling
    replacement.
    """

    def __init__(
        self,
        app: ManagerProcess,
        rng: random.Random,
        settle: Callable[[], object],
        rolling: Collection[str] = (),
    ) -> None:
        self.app = app
        self.rng = rng
        self.settle = settle
        self.rolling = rolling
        self.stopped: set[int] = set()
        self.storm: list[str] = []
        """The names of the signals of the storm that ended the life."""

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
        check_slots(app, self.rolling)

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
        self.storm = [signal.Signals(signum).name for signum in signals]
        return _allowed_statuses(signals, stopping=ending == "shutdown")

    def put_in_backoff(self, service: str, worker_id: int) -> WorkerLifecycleEvent:
        """Kill the worker of a slot until the master delays its restart by
        at least ``BACKOFF_STORM_DELAY``, and return the event of that exit."""
        app = self.app
        for _ in range(12):
            mark = app.mark()
            pid = app.wait_for(
                lambda: app.live_workers(service).get((service, worker_id)),
                what=f"a live worker {service}({worker_id})",
            )
            signal_process(pid, signal.SIGKILL)
            exit_event = app.wait_worker_exited(service, worker_id, pid=pid, after=mark)
            if exit_event.stop_reason is not None:
                # A reload that a storm left pending replaced the worker
                # before the kill: that exit is no crash, and backs nothing off.
                continue
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
    check_settled: Callable[[], None] = lambda: None,
) -> None:
    rng = life.rng
    app.wait_event("worker_started")
    check_start_method(app, start_method)
    if ending == "startup":
        expected_status = life.end(ending)
    else:
        # One announcing worker in ten stalls until its startup timeout, and
        # its replacement may stall too: a few of those, with spawned workers
        # on a loaded machine, take longer than the default wait.
        app.wait_ready(timeout=READY_TIMEOUT)
        life.settle()
        warm = master_resources(app.pid)
        warm_workers = len(app.live_workers())
        for _ in range(steps):
            life.step(rng.choice(WORKER_FAULTS))
        life.resume_all()
        life.settle()
        check_settled()
        # The hooks may have resized a service up since the warm sample.
        added = max(0, len(app.live_workers()) - warm_workers)
        wait_resources_flat(app.pid, warm, workers=added)
        expected_status = life.end(ending)
    status = app.wait_exit(timeout=30)
    record_restarts(app)
    assert status in expected_status, f"exit status after a storm during {ending}: {life.storm}"
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


def _check_policy_outcome(app: ManagerProcess, control_socket: Path) -> None:
    """Assert what the policies of ``policy_chaos_app`` made of its services
    once settled, the given-up one included."""
    app.wait_manager_event(ManagerEventKind.GIVE_UP, timeout=30)
    status = wait_settled_by_status(app, control_socket, rolling=ROLLING)
    states = {service["name"]: service["state"] for service in status["services"]}
    for name, allowed in POLICY_SERVICES.items():
        assert states[name] in allowed, f"service {name} is {states[name]}"
    check_finished_slots(status, FINISH_STATUSES)


@pytest.mark.parametrize(("ending", "start_method"), method_matrix(ENDINGS))
def test_chaos_with_policies_keeps_invariants(
    start_app: StartApp, control_socket: Path, seed: int, start_method: str, ending: str
) -> None:
    env = {
        "RELIABILITY_SEED": str(seed),
        "RELIABILITY_STALL_ONE_IN": "10",
        **WIDENED_PHASE.get(ending, {}),
    }
    app = start_app(
        "policy_chaos_app", env=env, start_method=start_method, control_socket=control_socket
    )

    def settle() -> None:
        status = wait_settled_by_status(app, control_socket, rolling=ROLLING)
        check_finished_slots(status, FINISH_STATUSES)

    chaos = Life(app, random.Random(seed), settle, rolling=ROLLING)
    try:
        _run_life(
            app,
            chaos,
            ending=ending,
            steps=STEPS[start_method],
            start_method=start_method,
            check_settled=lambda: _check_policy_outcome(app, control_socket),
        )
    except AssertionError as error:
        raise with_seed(seed, error) from error
