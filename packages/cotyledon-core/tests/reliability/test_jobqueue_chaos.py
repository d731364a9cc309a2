"""The jobqueue example under chaos and signal storms: every job done exactly once.

The example runs over several lives on one spool. In each, its workers
are killed, stopped and continued, and its master gets storms of SIGHUP
(many signals within a millisecond), during its startup and during
reloads too. Each life ends with a storm of SIGTERM or SIGINT, mixed with
SIGHUP, sent during the startup, a reload or the processing, and the
master must exit 0 after SIGTERM and 1 after SIGINT. A SIGINT leaves the
jobs in hand to the next life. The last life ends once every job is done.
The scenario runs with each start method.
"""

from __future__ import annotations

import contextlib
import random
import signal
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import pytest
from conftest import StartApp
from reliability_support import JOBQUEUE_DIR
from reliability_support import check_nothing_left
from reliability_support import check_slots
from reliability_support import check_start_method
from reliability_support import scaled
from reliability_support import send_storm
from reliability_support import signal_process
from reliability_support import start_method_params
from reliability_support import with_seed

from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess

# The soak sizes keep each run well within its 900 s timeout: 2000 jobs
# under the fork schedule took longer than that on a loaded 2-core
# machine, and a spawned worker takes far longer to start than a forked one.
JOBS: Final = {
    "fork": scaled(60, 400),
    "spawn": scaled(30, 120),
    "forkserver": scaled(30, 120),
}
# Lives after which the schedule no longer ends a life before every job is
# done, so that the scenario ends.
EARLY_ENDINGS: Final = 6
ENDING_MOMENTS: Final = ("startup", "reload", "running")
STEP_ACTIONS: Final = ("kill", "stop", "cont", "hup_storm", "reload_storm", "wait")


def _done(spool: Path) -> int:
    done = spool / "done"
    return sum(1 for p in done.iterdir() if p.suffix == ".json") if done.is_dir() else 0


def _ledger(spool: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in (spool / "ledger").iterdir():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                counts[line.split()[0]] += 1
    return counts


def _hup_storm(app: ManagerProcess, rng: random.Random) -> None:
    send_storm(app.pid, [signal.SIGHUP] * rng.randint(1, 20))


def _reload_then_storm(app: ManagerProcess, signals: Sequence[int]) -> None:
    """Start a reload, then send ``signals`` while it is under way."""
    mark = app.mark()
    send_storm(app.pid, [signal.SIGHUP])
    app.wait_manager_event(ManagerEventKind.RELOADING, after=mark)
    send_storm(app.pid, signals)


class JobqueueLife:
    """One run of the application on the spool, driven by one rng."""

    def __init__(self, app: ManagerProcess, rng: random.Random, spool: Path, jobs: int) -> None:
        self.app = app
        self.rng = rng
        self.spool = spool
        self.jobs = jobs
        self.stopped: set[int] = set()

    def step(self, action: str) -> None:
        app, rng = self.app, self.rng
        check_slots(app)
        processors = sorted(app.live_workers("Processor").values())
        if action == "kill" and processors:
            pid = rng.choice(processors)
            signal_process(pid, signal.SIGKILL)
            self.stopped.discard(pid)
        elif action == "stop" and processors:
            pid = rng.choice(processors)
            signal_process(pid, signal.SIGSTOP)
            self.stopped.add(pid)
        elif action == "cont":
            self.resume_all()
        elif action == "hup_storm":
            _hup_storm(app, rng)
        elif action == "reload_storm":
            _reload_then_storm(app, [signal.SIGHUP] * rng.randint(1, 20))
        done_before = _done(self.spool)
        with contextlib.suppress(AssertionError):
            app.wait_for(
                lambda: _done(self.spool) > done_before,
                timeout=0.3,
                what="progress",
                poll_interval=0.02,
            )

    def resume_all(self) -> None:
        for pid in self.stopped:
            signal_process(pid, signal.SIGCONT)
        self.stopped.clear()

    def run(self, *, early_end: bool) -> None:
        """Run the life and end it with a storm, which may come before every
        job is done when ``early_end`` is true."""
        app, rng = self.app, self.rng
        app.wait_event("worker_started")
        if rng.random() < 0.5:
            _hup_storm(app, rng)
        moment = rng.choice(ENDING_MOMENTS) if early_end else "running"
        if moment != "startup":
            app.wait_ready(timeout=60)
            steps = rng.randint(5, 25)
            while _done(self.spool) < self.jobs and (steps > 0 or not early_end):
                self.step(rng.choice(STEP_ACTIONS))
                steps -= 1
        # A stopped Processor would hold up a graceful stop until its 10 s
        # deadline.
        self.resume_all()
        stop = rng.choice((signal.SIGTERM, signal.SIGINT))
        signals = [rng.choice((stop, signal.SIGHUP)) for _ in range(rng.randint(1, 30))]
        signals.append(stop)
        if moment == "reload":
            _reload_then_storm(app, signals)
        else:
            send_storm(app.pid, signals)
        status = app.wait_exit(timeout=60)
        expected = 0 if stop == signal.SIGTERM else 1
        assert status == expected, f"exit status after a storm of {signal.Signals(stop).name}"
        check_nothing_left(app)


def _run_lives(start_app: StartApp, seed: int, spool: Path, start_method: str) -> None:
    """Run lives of the application until every job is done."""
    rng = random.Random(seed)
    jobs = JOBS[start_method]
    lives = 0
    while lives == 0 or _done(spool) < jobs:
        env = {"RELIABILITY_SPOOL": str(spool), "RELIABILITY_JOBS": str(jobs if lives == 0 else 0)}
        app = start_app("jobqueue_app", env=env, sys_path=[JOBQUEUE_DIR], start_method=start_method)
        life = JobqueueLife(app, rng, spool, jobs)
        life.run(early_end=lives < EARLY_ENDINGS)
        check_start_method(app, start_method)
        lives += 1


@pytest.mark.parametrize("start_method", start_method_params())
def test_jobqueue_chaos_does_each_job_once(
    start_app: StartApp, seed: int, tmp_path: Path, start_method: str
) -> None:
    spool = tmp_path / "spool"
    jobs = JOBS[start_method]
    try:
        _run_lives(start_app, seed, spool, start_method)
    except AssertionError as error:
        raise with_seed(seed, error) from error
    ledger = _ledger(spool)

    assert _done(spool) == jobs, f"seed {seed}"
    assert not list((spool / "incoming").iterdir()), f"seed {seed}: jobs left waiting"
    # A worker killed between writing a result and its ledger line leaves
    # the line to its replacement, which a storm may stop first: a missing
    # line is not a lost job, a second one is a job done twice.
    twice = sorted(job for job, count in ledger.items() if count > 1)
    assert not twice, f"seed {seed}: jobs done twice: {twice}"
