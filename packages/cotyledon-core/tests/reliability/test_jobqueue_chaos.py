"""The jobqueue example under the chaos schedule: every job done exactly once."""

from __future__ import annotations

import contextlib
import os
import random
import signal
from collections import Counter
from pathlib import Path

from conftest import StartApp
from reliability_support import JOBQUEUE_DIR
from reliability_support import TALLY
from reliability_support import check_nothing_left
from reliability_support import check_slots
from reliability_support import scaled

# The soak size keeps the test well within its 900 s timeout: 2000 jobs
# under this schedule took longer than that on a loaded 2-core machine.
JOBS = scaled(60, 400)


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


def test_jobqueue_chaos_does_each_job_once(start_app: StartApp, seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    spool = tmp_path / "spool"
    env = {"RELIABILITY_SPOOL": str(spool), "RELIABILITY_JOBS": str(JOBS)}
    app = start_app("jobqueue_app", env=env, sys_path=[JOBQUEUE_DIR])
    app.wait_ready()
    stopped: set[int] = set()
    while _done(spool) < JOBS:
        check_slots(app)
        action = rng.choice(("kill", "stop", "cont", "hup", "wait"))
        processors = sorted(app.live_workers("Processor").values())
        if action == "kill" and processors:
            with contextlib.suppress(ProcessLookupError):
                os.kill(rng.choice(processors), signal.SIGKILL)
        elif action == "stop" and processors:
            pid = rng.choice(processors)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)
            stopped.add(pid)
        elif action == "cont":
            for pid in stopped:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
            stopped.clear()
        elif action == "hup":
            app.send_signal(signal.SIGHUP)
        TALLY.faults += action != "wait"
        done_before = _done(spool)
        with contextlib.suppress(AssertionError):
            app.wait_for(
                lambda before=done_before: _done(spool) > before,  # type: ignore[misc]
                timeout=0.3,
                what="progress",
                poll_interval=0.02,
            )
    for pid in stopped:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    app.send_signal(signal.SIGTERM)
    status = app.wait_exit(timeout=30)
    ledger = _ledger(spool)

    assert status == 0, f"seed {seed}"
    assert _done(spool) == JOBS, f"seed {seed}"
    # A worker killed between writing a result and its ledger line leaves
    # the line to its replacement, which the final SIGTERM may stop first:
    # a missing line is not a lost job, a second one is a job done twice.
    twice = sorted(job for job, count in ledger.items() if count > 1)
    assert not twice, f"seed {seed}: jobs done twice: {twice}"
    check_nothing_left(app)
