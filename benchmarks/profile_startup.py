"""Where the start of N workers spends its time, in the master and in a worker.

``python -m benchmarks.profile_startup --workers 256`` starts the scenario
application with three instruments, then prints what they found:

- cProfile on CPU time in the master, from the top of the application
  until every worker is inside run();
- the wall and CPU time of each ``os.fork()`` in the master;
- in each worker, its CPU time when the fork returns and when run() is
  entered;
- in each worker, a cProfile on CPU time of its main thread, from the fork
  to the start of its first thread. In this project, that thread is the
  one that calls run().

``--python`` picks the interpreter, so the same profile can be taken of
cotyledon 2.2.0. Absolute times under cProfile are inflated; compare the
shares, and the instrument-free figures of ``python -m benchmarks``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from benchmarks import channel
from benchmarks.driver import EventSocket
from benchmarks.driver import Run
from benchmarks.driver import raise_own_file_limit
from benchmarks.scenarios import start_timeout

_DUMP_TIMEOUT = 60.0


def _master(workers: int, out: Path) -> None:
    """Run the scenario application as an instrumented master."""
    # On CPU time: the wall time that the master spends waiting for a CPU
    # would land on whatever call comes after each fork.
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    from benchmarks import scenario_app

    forks: list[tuple[float, float]] = []
    real_fork = os.fork

    def timed_fork() -> int:
        wall, cpu = time.perf_counter(), time.process_time()
        pid = real_fork()
        if pid:
            forks.append((time.perf_counter() - wall, time.process_time() - cpu))
        return pid

    os.fork = timed_fork
    worker_profile = cProfile.Profile(time.thread_time)
    forked_at: list[float] = []
    thread_start = threading.Thread.start

    def _save(name: str, write: Callable[[Path], object]) -> None:
        # Written under a temporary name, then renamed: a worker killed
        # halfway leaves no half-written file.
        partial = out / f"partial-{os.getpid()}"
        write(partial)
        partial.replace(out / name)

    def first_thread_start(thread: threading.Thread) -> None:
        # The profile stops in the thread that runs it, before the worker
        # has a second thread: a profile stopped from another thread would
        # race with the one it profiles.
        threading.Thread.start = thread_start  # type: ignore[method-assign]
        worker_profile.disable()
        _save(f"worker-{os.getpid()}.prof", worker_profile.dump_stats)
        thread_start(thread)

    def in_child() -> None:
        # The child inherits the master's profiler, running.
        profile.disable()
        forked_at.append(time.process_time())
        threading.Thread.start = first_thread_start  # type: ignore[method-assign, assignment]
        worker_profile.enable()

    os.register_at_fork(after_in_child=in_child)
    service_run = scenario_app.BenchService.run

    def profiled_run(self: scenario_app.BenchService) -> None:
        times = {
            "forked": forked_at[0] if forked_at else 0.0,
            "process": time.process_time(),
            "run_thread": time.thread_time(),
        }
        _save(f"worker-{os.getpid()}.json", lambda path: path.write_text(json.dumps(times)))
        service_run(self)

    scenario_app.BenchService.run = profiled_run  # type: ignore[method-assign]

    def dump(signum: int, frame: FrameType | None) -> None:
        profile.disable()
        profile.dump_stats(out / "master.prof")
        (out / "forks.json").write_text(json.dumps(forks))
        channel.report("profiled", channel.MASTER_ID)

    signal.signal(signal.SIGUSR1, dump)
    sys.argv = [sys.argv[0], "--workers", str(workers)]
    scenario_app.main()


def _profile(python: str, workers: int, out: Path) -> dict[str, Any]:
    """Run the instrumented master until every worker runs; return its timings."""
    raise_own_file_limit()
    events = EventSocket(out / "events.sock")
    command = [
        python,
        "-m",
        "benchmarks.profile_startup",
        "--master",
        "--workers",
        str(workers),
        "--out",
        str(out),
    ]
    try:
        with Run(events, command, out / "master.log") as run:
            last = run.wait_running(range(workers), start_timeout(workers))
            run.signal_master(signal.SIGUSR1)
            run.wait_until(
                lambda: bool(run.of_kind("profiled")), _DUMP_TIMEOUT, "before the profile"
            )
            ready = run.of_kind("main")[0].t
            first = min(event.t for event in run.of_kind("run"))
            return {
                "exits": [event.detail for event in run.of_kind("dead")],
                "startup": last - run.t0,
                "ready": ready - run.t0,
                "first": first - ready,
                "last": last - ready,
            }
    finally:
        events.close()


def _top(stats: pstats.Stats, sort: str, limit: int) -> str:
    stream = io.StringIO()
    stats.stream = stream  # type: ignore[attr-defined]
    stats.sort_stats(sort).print_stats(limit)
    lines = stream.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join(lines[start - 1 :])


def _report(workers: int, out: Path, timings: dict[str, Any], limit: int) -> str:
    forks = json.loads((out / "forks.json").read_text())
    walls = [wall for wall, _ in forks]
    cpus = [cpu for _, cpu in forks]
    checkpoints = [json.loads(path.read_text()) for path in sorted(out.glob("worker-*.json"))]
    worker_stats = [str(path) for path in sorted(out.glob("worker-*.prof"))]
    lines = [
        f"# N={workers}: exec to the last worker in run() {timings['startup']:.3f} s",
        f"exec to the master's report before run(): {timings['ready']:.3f} s; "
        f"from there to the first worker in run() {timings['first']:.3f} s, "
        f"to the last {timings['last']:.3f} s",
        f"os.fork() in the master, {len(forks)} calls: wall median "
        f"{1e3 * statistics.median(walls):.2f} ms, mean {1e3 * statistics.mean(walls):.2f} ms, "
        f"max {1e3 * max(walls):.2f} ms; master CPU median "
        f"{1e3 * statistics.median(cpus):.2f} ms",
    ]
    if timings["exits"]:
        codes = ", ".join(sorted(set(timings["exits"])))
        lines.append(f"worker exits during the start: {len(timings['exits'])} (codes {codes})")
    if checkpoints:

        def mean_ms(key: str) -> str:
            return f"{1e3 * statistics.mean(c[key] for c in checkpoints):.2f} ms"

        lines.append(
            f"worker CPU, mean of {len(checkpoints)}: {mean_ms('forked')} when the fork "
            f"returns, {mean_ms('process')} when run() starts, of which "
            f"{mean_ms('run_thread')} in the thread that calls run()"
        )
    master = pstats.Stats(str(out / "master.prof"))
    lines += ["", "## master CPU, by own time", _top(master, "tottime", limit)]
    lines += ["", "## master CPU, by cumulative time", _top(master, "cumulative", limit)]
    if worker_stats:
        merged = pstats.Stats(worker_stats[0])
        for path in worker_stats[1:]:
            merged.add(path)
        lines += [
            "",
            f"## workers' main threads, fork to their first thread, {len(worker_stats)} summed, "
            "by own CPU",
            _top(merged, "tottime", limit),
        ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_startup")
    parser.add_argument("--workers", type=int, default=256)
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the master")
    parser.add_argument("--limit", type=int, default=20, help="functions per listing")
    parser.add_argument("--master", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    if options.master:
        _master(options.workers, options.out)
        return 0
    with tempfile.TemporaryDirectory(prefix="cotybench-profile-") as folder:
        out = Path(folder)
        timings = _profile(options.python, options.workers, out)
        print(_report(options.workers, out, timings, options.limit))
    return 0


if __name__ == "__main__":
    sys.exit(main())
