"""The scenarios: each one measures one run of one implementation.

A scenario returns an ``Outcome``: the figures it measured, and notes on
what went wrong. A figure is in seconds, KiB, percent or a count, as its
name shows.
Times of events come from the processes' own clocks; times of signals and
exits from the driver's, which is the same CLOCK_MONOTONIC.
"""

from __future__ import annotations

import dataclasses
import signal
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.driver import EventSocket
from benchmarks.driver import Run
from benchmarks.driver import ScenarioError
from benchmarks.driver import ScenarioTimeoutError
from benchmarks.driver import context_switches
from benchmarks.driver import pss_kib
from benchmarks.driver import read_stat

THIS = "this"
BASELINE = "2.2.0"
FORK = "fork"
THREAD = "thread"
SPAWN = "spawn"


@dataclasses.dataclass(frozen=True)
class Implementation:
    key: str
    label: str
    python: str
    module: str
    supervised: bool
    """A cotyledon (runs the scenario app) rather than a floor."""

    def command(self, workers: int, mode: str) -> list[str]:
        if self.supervised:
            return [self.python, "-m", self.module, "--workers", str(workers), "--mode", mode]
        return [self.python, "-m", self.module, str(workers)]


def implementations(this_python: str, baseline_python: str | None) -> list[Implementation]:
    """Return the implementations in the order in which each repetition runs them."""
    found = [Implementation(THIS, "this project", this_python, "benchmarks.scenario_app", True)]
    if baseline_python is not None:
        found.append(
            Implementation(
                BASELINE, "cotyledon 2.2.0", baseline_python, "benchmarks.scenario_app", True
            )
        )
    found.append(Implementation(FORK, "fork floor", this_python, "benchmarks.floor_fork", False))
    found.append(
        Implementation(THREAD, "thread floor", this_python, "benchmarks.floor_thread", False)
    )
    found.append(Implementation(SPAWN, "spawn floor", this_python, "benchmarks.floor_spawn", False))
    return found


@dataclasses.dataclass(frozen=True)
class Settings:
    repetitions: int
    startup_sizes: tuple[int, ...]
    respawn_workers: int
    respawn_kills: int
    burst_timeout: float
    shutdown_workers: int
    reload_workers: int
    idle_workers: int
    idle_seconds: float
    idle_settle: float
    crash_workers: int
    crash_seconds: float
    scale_hold: float
    settle: float
    """Seconds between the last worker's start and the stimulus, so that
    the master has finished its start-up work."""

    @property
    def scale_workers(self) -> int:
        return max(self.startup_sizes)


FULL = Settings(
    repetitions=3,
    startup_sizes=(1, 16, 64, 256, 1024),
    respawn_workers=16,
    respawn_kills=10,
    burst_timeout=12.0,
    shutdown_workers=64,
    reload_workers=16,
    idle_workers=16,
    idle_seconds=10.0,
    idle_settle=1.0,
    crash_workers=4,
    crash_seconds=10.0,
    scale_hold=3.0,
    settle=0.5,
)

SMOKE = Settings(
    repetitions=1,
    startup_sizes=(1, 4),
    respawn_workers=4,
    respawn_kills=2,
    burst_timeout=5.0,
    shutdown_workers=4,
    reload_workers=4,
    idle_workers=4,
    idle_seconds=0.5,
    idle_settle=0.2,
    crash_workers=2,
    crash_seconds=0.5,
    scale_hold=0.2,
    settle=0.1,
)

RESPAWN_TIMEOUT = 15.0
RELOAD_TIMEOUT = 10.0


def start_timeout(workers: int) -> float:
    return 15.0 + 0.02 * workers


def stop_timeout(workers: int) -> float:
    return 20.0 + 0.04 * workers


@dataclasses.dataclass
class Outcome:
    figures: dict[str, float] = dataclasses.field(default_factory=dict)
    notes: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    log_tail: str = ""


class Bench:
    """The context of every scenario: the event socket, the settings, a log folder."""

    def __init__(self, events: EventSocket, settings: Settings, logs: Path) -> None:
        self.events = events
        self.settings = settings
        self._logs = logs
        self._runs = 0

    def __repr__(self) -> str:
        return f"<Bench runs={self._runs} logs={self._logs}>"

    def run(self, impl: Implementation, workers: int, mode: str = "serve") -> Run:
        self._runs += 1
        log = self._logs / f"{self._runs:04d}-{impl.key}-{mode}-{workers}.log"
        return Run(self.events, impl.command(workers, mode), log)


Scenario = Callable[[Bench, Implementation], Outcome]


def measured(body: Callable[[Run, Outcome], None]) -> Callable[[Run], Outcome]:
    """Turn a scenario body into a function that reports failures in its outcome."""

    def wrapper(run: Run) -> Outcome:
        outcome = Outcome()
        try:
            with run:
                body(run, outcome)
        except ScenarioError as exc:
            outcome.error = str(exc)
            outcome.log_tail = run.log_tail()
        return outcome

    return wrapper


def startup(workers: int) -> Scenario:
    """From the exec of the master to the last worker inside run().

    At the largest size, the supervised implementations also run
    ``scale_hold`` seconds and stop: the scale check.
    """

    def scenario(bench: Bench, impl: Implementation) -> Outcome:
        scale = impl.supervised and workers == bench.settings.scale_workers

        def body(run: Run, outcome: Outcome) -> None:
            try:
                last = run.wait_running(range(workers), start_timeout(workers))
            except ScenarioError as exc:
                outcome.notes.extend(_crashes(run, workers))
                if scale:
                    outcome.figures["scale_clean"] = 0.0
                    outcome.notes.append(f"scale: {exc}")
                raise

            outcome.figures[f"startup_{workers}"] = last - run.t0
            outcome.figures[f"master_cpu_{workers}"] = _cpu_seconds(run.pid)
            firsts = [run.runs_of(worker_id)[0] for worker_id in range(workers)]
            outcome.figures[f"worker_cpu_{workers}"] = statistics.mean(
                float(event.detail) for event in firsts
            )
            main = run.of_kind("main")
            if main:
                outcome.figures[f"ready_{workers}"] = main[0].t - run.t0
            if not impl.supervised:
                return

            if scale:
                run.hold(bench.settings.scale_hold)
            problems = _crashes(run, workers) + _stop_cleanly(run, workers, outcome)
            if scale:
                outcome.figures["scale_clean"] = 0.0 if problems else 1.0
                outcome.notes.extend(f"scale: {problem}" for problem in problems)
            else:
                outcome.notes.extend(problems)

        return measured(body)(bench.run(impl, workers))

    return scenario


def _stop_cleanly(run: Run, workers: int, outcome: Outcome) -> list[str]:
    """Stop the run with SIGTERM; return what was not clean about the stop."""
    try:
        outcome.figures[f"stop_{workers}"] = run.stop(signal.SIGTERM, stop_timeout(workers))
    except ScenarioError as exc:
        return [str(exc)]
    problems = []
    if run.status != 0:
        problems.append(f"master exit status {run.status}")
    left = run.leftovers()
    if left:
        problems.append(f"{len(left)} processes left after the master exited")
    return problems


def _crashes(run: Run, workers: int) -> list[str]:
    dead = run.of_kind("dead")
    starts = len(run.of_kind("run"))
    problems = []
    if dead:
        codes = sorted({event.detail for event in dead})
        problems.append(f"{len(dead)} worker exits (codes {', '.join(codes)})")
    if starts > workers:
        problems.append(f"{starts - workers} worker starts beyond the first {workers}")
    return problems


def respawn(bench: Bench, impl: Implementation) -> Outcome:
    """SIGKILL one worker at a time, each until its replacement is inside run()."""
    settings = bench.settings
    workers = settings.respawn_workers

    def body(run: Run, outcome: Outcome) -> None:
        run.wait_running(range(workers), start_timeout(workers))
        run.hold(settings.settle)
        latencies = []
        for worker_id in range(settings.respawn_kills):
            old_pid = run.live[worker_id]
            killed = run.kill_worker(worker_id)
            back = _replacement(run, worker_id, old_pid, RESPAWN_TIMEOUT)
            latencies.append(back - killed)
        outcome.figures["respawn_median"] = statistics.median(latencies)
        outcome.figures["respawn_max"] = max(latencies)

    return measured(body)(bench.run(impl, workers))


def _replacement(run: Run, worker_id: int, old_pid: int, timeout: float) -> float:
    """Wait for the replacement of ``old_pid`` to report ``run``; return its time."""

    def replaced() -> bool:
        return run.live[worker_id] != old_pid

    run.wait_until(replaced, timeout, f"before worker {worker_id} was replaced")
    return run.runs_of(worker_id)[-1].t


def burst(bench: Bench, impl: Implementation) -> Outcome:
    """SIGKILL every worker at once, until all replacements are inside run()."""
    settings = bench.settings
    workers = settings.respawn_workers

    def body(run: Run, outcome: Outcome) -> None:
        run.wait_running(range(workers), start_timeout(workers))
        run.hold(settings.settle)
        old = dict(run.live)
        killed = min(run.kill_worker(worker_id) for worker_id in range(workers))

        def replaced() -> int:
            return sum(run.live[worker_id] != old[worker_id] for worker_id in range(workers))

        try:
            run.wait_until(lambda: replaced() == workers, settings.burst_timeout, "burst")
        except ScenarioTimeoutError:
            count = replaced()
            outcome.figures["burst_back"] = count
            raise ScenarioTimeoutError(
                f"timed out: {count} of {workers} replacements running after "
                f"{settings.burst_timeout:g} s"
            ) from None
        outcome.figures["burst_back"] = workers
        back = [
            next(e.t for e in run.runs_of(worker_id) if e.pid != old[worker_id])
            for worker_id in range(workers)
        ]
        outcome.figures["burst_all"] = max(back) - killed
        outcome.figures["burst_spread"] = max(back) - min(back)

    return measured(body)(bench.run(impl, workers))


def shutdown(bench: Bench, impl: Implementation) -> Outcome:
    """SIGTERM to the master, until the master and every worker are gone."""
    settings = bench.settings
    workers = settings.shutdown_workers

    def body(run: Run, outcome: Outcome) -> None:
        run.wait_running(range(workers), start_timeout(workers))
        run.hold(settings.settle)
        outcome.figures["shutdown"] = run.stop(signal.SIGTERM, stop_timeout(workers))
        if run.status != 0:
            outcome.notes.append(f"master exit status {run.status}")

    return measured(body)(bench.run(impl, workers))


def reload(bench: Bench, impl: Implementation) -> Outcome:
    """SIGHUP to the master, until every worker's reload() has run."""
    settings = bench.settings
    workers = settings.reload_workers

    def body(run: Run, outcome: Outcome) -> None:
        run.wait_running(range(workers), start_timeout(workers))
        run.hold(settings.settle)
        sent = run.signal_master(signal.SIGHUP)

        def reloaded() -> bool:
            return len({e.worker_id for e in run.of_kind("reload")}) == workers

        run.wait_until(reloaded, RELOAD_TIMEOUT, "before every worker reloaded")
        first: dict[int, float] = {}
        for event in run.of_kind("reload"):
            first.setdefault(event.worker_id, event.t)
        outcome.figures["reload"] = max(first.values()) - sent

    return measured(body)(bench.run(impl, workers))


def idle(bench: Bench, impl: Implementation) -> Outcome:
    """Measure the master's CPU time and context switches over an idle window, and memory.

    A floor's parent does nothing by construction: of a floor, only the
    memory is measured, after the same settling time.
    """
    settings = bench.settings
    workers = settings.idle_workers

    def body(run: Run, outcome: Outcome) -> None:
        run.wait_running(range(workers), start_timeout(workers))
        run.hold(settings.idle_settle)
        if impl.supervised:
            before = _cpu_seconds(run.pid)
            switches = context_switches(run.pid)
            run.hold(settings.idle_seconds)
            outcome.figures["idle_cpu"] = _cpu_seconds(run.pid) - before
            outcome.figures["idle_switches"] = context_switches(run.pid) - switches
        outcome.figures["master_pss"] = pss_kib(run.pid)
        sizes = [pss_kib(pid) for pid in run.live.values()]
        outcome.figures["worker_pss"] = statistics.mean(sizes)
        outcome.figures["worker_pss_max"] = max(sizes)
        outcome.notes.extend(_crashes(run, workers))

    return measured(body)(bench.run(impl, workers))


def _cpu_seconds(pid: int) -> float:
    stat = read_stat(pid)
    if stat is None:
        raise ScenarioError(f"the master {pid} is gone")
    return stat.cpu_seconds


def crash_loop(bench: Bench, impl: Implementation) -> Outcome:
    """Workers whose run() raises: spawns and master CPU in a window, then SIGTERM."""
    settings = bench.settings
    workers = settings.crash_workers

    def body(run: Run, outcome: Outcome) -> None:
        run.wait_until(
            lambda: bool(run.of_kind("run")), start_timeout(workers), "before a worker started"
        )
        # The window opens when the first worker starts, so that it covers
        # the supervision and not the master's own start.
        opened = run.of_kind("run")[0].t
        sampled = time.monotonic()
        before = _cpu_seconds(run.pid)
        run.hold(opened + settings.crash_seconds - time.monotonic())
        used = _cpu_seconds(run.pid) - before
        outcome.figures["crash_cpu"] = 100.0 * used / (time.monotonic() - sampled)
        end = opened + settings.crash_seconds
        outcome.figures["crash_spawns"] = sum(e.t <= end for e in run.of_kind("run"))
        outcome.figures["crash_exit"] = run.stop(signal.SIGTERM, stop_timeout(workers))
        if run.status != 0:
            outcome.notes.append(f"master exit status {run.status}")

    return measured(body)(bench.run(impl, workers, mode="crash"))
