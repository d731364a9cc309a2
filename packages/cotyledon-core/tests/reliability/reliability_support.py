"""Helpers of the reliability suites: invariants, schedules, the tally.

Every scenario checks the same invariants after each of its steps:

- a (service, worker id) slot never has more than one live process, and
  has exactly one once the manager has settled;
- after the master exits, no process it or its workers started is left,
  zombies included;
- the master's descriptors, memory and threads stay flat as restarts add up;
- the master exits with the documented status.

With the supervision policies on, "once settled" follows the manager's own
status, read from its control socket: a slot that its policies finished,
or whose service was given up, has no process at all.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from typing import Final

import attrs
import pytest

from cotyledon import WorkerEventKind
from cotyledon.runtime import query_control_socket
from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess
from cotyledon_testkit._process_tree import format_process_tree
from cotyledon_testkit._process_tree import live_processes_of_session
from cotyledon_testkit._process_tree import read_process

APPS_DIR: Final = Path(__file__).parent
REPO_ROOT: Final = Path(__file__).parents[4]
JOBQUEUE_DIR: Final = REPO_ROOT / "examples" / "jobqueue"
HTTPSERVICE_DIR: Final = REPO_ROOT / "examples" / "httpservice"

SOAK_ENV: Final = "COTYLEDON_SOAK"
SEED_ENV: Final = "COTYLEDON_SEED"
REPORT_ENV: Final = "COTYLEDON_RELIABILITY_REPORT"

SOAK: Final = os.environ.get(SOAK_ENV) == "1"
"""True under ``make soak``: the scenarios run their long versions."""

SETTLE_TIMEOUT: Final = 30.0

START_METHOD_ENV: Final = "RELIABILITY_START_METHOD"
"""The environment variable that gives the apps their start method."""

START_METHODS: Final = ("fork", "spawn", "forkserver")

# The master's growth that the resource check allows, whatever the number
# of restarts: a few descriptors for a spawn in progress, and memory for
# the allocator's free lists.
FD_SLACK: Final = 4
RSS_SLACK_KIB: Final = 8 * 1024


def scaled(short: int, long: int) -> int:
    """Return the size of a scenario: ``long`` under soak, else ``short``."""
    return long if SOAK else short


def start_method_params(*, fork_only: str | None = None) -> list[Any]:
    """Return the start methods as pytest parameters.

    ``fork_only`` is the reason why a scenario applies to fork only, and
    the other methods are then skipped with it.
    """
    return [
        pytest.param(
            method,
            marks=[pytest.mark.skip(reason=fork_only)] if fork_only and method != "fork" else [],
            id=method,
        )
        for method in START_METHODS
    ]


def method_matrix(cases: Sequence[str]) -> list[Any]:
    """Pair each case with a start method, as pytest parameters ``(case, start_method)``.

    Under soak every pair runs. The short run takes each case with one
    method, in turn, so that every case and every method still run.
    """
    pairs = [
        (case, method)
        for index, case in enumerate(cases)
        for method in START_METHODS
        if SOAK or method == START_METHODS[index % len(START_METHODS)]
    ]
    return [pytest.param(case, method, id=f"{case}-{method}") for case, method in pairs]


def check_start_method(app: ManagerProcess, method: str) -> None:
    """Assert that the master starts its workers with ``method``."""
    TALLY.checks += 1
    app.wait_for(
        lambda: f"(start method {method})" in app.log_text(),
        what=f"the master to log its start method {method}",
        poll_interval=0.05,
    )


def base_seed() -> int:
    """The seed of the schedules: ``COTYLEDON_SEED``, or a new one per run."""
    text = os.environ.get(SEED_ENV)
    return int(text) if text else random.SystemRandom().randrange(1 << 32)


@attrs.define
class Tally:
    """What the scenarios of this process did, for the soak report."""

    scenarios: list[str] = attrs.Factory(list)
    seeds: list[int] = attrs.Factory(list)
    faults: int = 0
    checks: int = 0
    restarts: int = 0
    failures: list[str] = attrs.Factory(list)
    requests: dict[str, int] = attrs.Factory(dict)
    """HTTP requests sent under load, by phase of the load scenario."""
    failed_requests: dict[str, int] = attrs.Factory(dict)
    """HTTP requests that failed, by phase of the load scenario."""

    def as_dict(self) -> dict[str, object]:
        return attrs.asdict(self)


TALLY = Tally()


def write_report(path: Path, worker: str) -> None:
    """Append this process's tally to the report as one JSON line."""
    line = json.dumps({"worker": worker, **TALLY.as_dict()})
    with open(path, "a") as report:
        report.write(line + "\n")


def is_live(pid: int) -> bool:
    info = read_process(pid)
    return info is not None and info.state != "Z"


def started_pids(app: ManagerProcess) -> dict[tuple[str, int], list[int]]:
    """Every worker pid the master reported starting, by slot."""
    slots: dict[tuple[str, int], list[int]] = {}
    for event in app.worker_events(kind=WorkerEventKind.STARTED):
        slots.setdefault((event.service, event.worker_id), []).append(event.pid)
    return slots


def check_slots(app: ManagerProcess, rolling: Collection[str] = ()) -> None:
    """Assert that no slot has two live processes (from the events and /proc).

    A rolling reload runs a replacement next to the worker of one slot at a
    time: a slot of a service in ``rolling`` may have two live processes,
    in at most one slot of that service at once.
    """
    TALLY.checks += 1
    app.receive()
    doubled: dict[str, list[tuple[str, int]]] = {}
    for slot, pids in started_pids(app).items():
        alive = [pid for pid in pids if is_live(pid) and _in_session(app, pid)]
        allowed = 2 if slot[0] in rolling else 1
        assert len(alive) <= allowed, f"slot {slot} has {len(alive)} live workers {alive}"
        if len(alive) == 2:
            doubled.setdefault(slot[0], []).append(slot)
    for service, slots in doubled.items():
        assert len(slots) == 1, f"service {service} has two live workers in slots {slots}"


def _in_session(app: ManagerProcess, pid: int) -> bool:
    return any(p.pid == pid for p in live_processes_of_session(app.pid))


def wait_settled(
    app: ManagerProcess,
    expected: Mapping[str, int] | Callable[[], Mapping[str, int]],
    timeout: float = SETTLE_TIMEOUT,
) -> dict[tuple[str, int], int]:
    """Wait until each slot of ``expected`` (service: workers, or a function
    that returns it as it changes) has exactly one live, ready worker and no
    other slot of those services has one."""

    def settled() -> dict[tuple[str, int], int] | None:
        if _reloading(app):
            return None
        sizes = expected() if callable(expected) else expected
        wanted = {(service, wid) for service, count in sizes.items() for wid in range(count)}
        live = {k: v for k, v in app.live_workers().items() if k[0] in sizes}
        if set(live) != wanted or not all(is_live(pid) for pid in live.values()):
            return None
        ready = {e.pid for e in app.worker_events(kind=WorkerEventKind.READY)}
        return live if all(pid in ready for pid in live.values()) else None

    live = app.wait_for(settled, timeout, "every slot to settle", poll_interval=0.05)
    check_slots(app)
    return live


def read_status(control_socket: Path) -> dict[str, Any] | None:
    """Return the manager's status from its control socket, or None when
    the socket does not respond (the master is starting or has exited)."""
    try:
        return query_control_socket(str(control_socket), "status")
    except (OSError, ValueError, TypeError):
        return None


def wait_settled_by_status(
    app: ManagerProcess,
    control_socket: Path,
    *,
    rolling: Collection[str] = (),
    unready: Collection[str] = (),
    timeout: float = 2 * SETTLE_TIMEOUT,
) -> dict[str, Any]:
    """Wait until the manager has settled according to its own status, and
    return that status.

    Settled means that no reload is in progress. In the status, a finished
    slot has no live process, and neither has any slot of a service given
    up. Every other slot has exactly one process: live, ready, and the one
    that the status names. The workers of the services in ``unready`` need not
    be ready. The status is read from the control socket.
    """

    def settled() -> dict[str, Any] | None:
        if _reloading(app):
            return None
        status = read_status(control_socket)
        if status is None or status["phase"] != "running":
            return None
        live = app.live_workers()
        ready = {event.pid for event in app.worker_events(kind=WorkerEventKind.READY)}
        for service in status["services"]:
            need_ready = service["name"] not in unready
            if not _service_settled(service, live, ready if need_ready else None):
                return None
        return status

    status = app.wait_for(
        settled, timeout, "every slot to settle as the status says", poll_interval=0.1
    )
    check_slots(app, rolling)
    return status


def _service_settled(
    service: Mapping[str, Any], live: Mapping[tuple[str, int], int], ready: set[int] | None
) -> bool:
    """Tell whether the live workers of one service match its status.

    ``ready`` contains the pids reported ready, or is None when readiness
    does not count.
    """
    name = service["name"]
    slots = {slot["worker_id"]: slot for slot in service["slots"]}
    live_ids = {worker_id for (owner, worker_id) in live if owner == name}
    if service["state"] != "running":
        # A finished or given-up service keeps a finished record per slot.
        return not live_ids and all(slot["state"] == "finished" for slot in slots.values())
    if sorted(slots) != list(range(service["workers"])) or live_ids - slots.keys():
        return False
    for worker_id, slot in slots.items():
        pid = live.get((name, worker_id))
        if slot["state"] == "finished":
            if pid is not None:
                return False
            continue
        if slot["state"] != "running" or pid is None or slot["pid"] != pid or not is_live(pid):
            return False
        if ready is not None and (not slot["ready"] or pid not in ready):
            return False
    return True


def check_finished_slots(
    status: Mapping[str, Any], finish_statuses: Mapping[str, Collection[int]]
) -> None:
    """Assert that each finished slot of a service not given up ended with
    one of the exit statuses that its policies end for good."""
    TALLY.checks += 1
    for service in status["services"]:
        if service["state"] == "given-up":
            continue
        name = service["name"]
        for slot in service["slots"]:
            if slot["state"] != "finished":
                continue
            allowed = finish_statuses.get(name, ())
            assert slot["last_exit_code"] in allowed, (
                f"slot {name}({slot['worker_id']}) finished with status "
                f"{slot['last_exit_code']}, not one of {sorted(allowed)}"
            )


def send_storm(pid: int, signals: Sequence[int]) -> None:
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


def signal_process(pid: int, signum: int) -> None:
    """Send a signal to a worker, unless it has already exited."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
    TALLY.faults += 1


def _reloading(app: ManagerProcess) -> bool:
    """Tell whether the manager has announced a reload that it has not ended."""
    kinds = [e.kind for e in app.manager_events()]
    reloading = [i for i, kind in enumerate(kinds) if kind is ManagerEventKind.RELOADING]
    reloaded = [i for i, kind in enumerate(kinds) if kind is ManagerEventKind.RELOADED]
    return bool(reloading) and (not reloaded or reloaded[-1] < reloading[-1])


def check_nothing_left(app: ManagerProcess, extra_pids: Iterable[int] = ()) -> None:
    """Assert that the session of the exited master is empty, zombies too,
    and that none of ``extra_pids`` (processes that left it) is alive."""
    TALLY.checks += 1

    def empty() -> bool:
        return not live_processes_of_session(app.pid)

    try:
        app.wait_for(empty, 5.0, "the session to empty", poll_interval=0.02)
    except AssertionError:
        left = format_process_tree(live_processes_of_session(app.pid))
        raise AssertionError(f"processes left after the master exited:\n{left}") from None
    alive = [pid for pid in extra_pids if is_live(pid)]
    assert not alive, f"processes outside the session left alive: {alive}"


@attrs.frozen
class Resources:
    """The master's descriptors, resident memory (KiB) and threads."""

    fds: int
    rss_kib: int
    threads: int
    cpu_ticks: int
    fd_targets: tuple[str, ...] = attrs.field(default=(), repr=False)
    """Each open descriptor and what it points to, for failure messages."""


def master_resources(pid: int) -> Resources:
    fd_dir = f"/proc/{pid}/fd"
    targets = []
    for name in os.listdir(fd_dir):
        try:
            targets.append(f"{name}->{os.readlink(os.path.join(fd_dir, name))}")
        except OSError:
            continue  # closed since the listing
    fds = len(targets)
    fields: dict[str, str] = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    with open(f"/proc/{pid}/stat") as stat_file:
        stat = stat_file.read()
    after = stat[stat.rindex(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of stat(5), 12 and 13 after ')'.
    ticks = int(after[11]) + int(after[12])
    return Resources(
        fds,
        int(fields["VmRSS"].split()[0]),
        int(fields["Threads"]),
        ticks,
        tuple(sorted(targets, key=lambda target: int(target.split("->")[0]))),
    )


def wait_resources_flat(
    pid: int, warm: Resources, *, workers: int = 0, timeout: float = 5.0
) -> None:
    """Sample the master until it has not grown since ``warm``, then check it.

    A worker that is still being started or reaped holds descriptors in the
    master for a moment, so that a single sample can count them. A leak
    stays past ``timeout`` and fails the check, with the descriptors listed.
    """
    deadline = time.monotonic() + timeout
    while True:
        now = master_resources(pid)
        try:
            check_resources_flat(warm, now, workers=workers)
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
            TALLY.checks -= 1  # only the last sample counts as a check
            time.sleep(0.05)
        else:
            return


def check_resources_flat(warm: Resources, now: Resources, *, workers: int = 0) -> None:
    """Assert that the master has not grown since ``warm``; ``workers`` is
    how many workers may have started between the two samples, each with
    two descriptors in the master."""
    TALLY.checks += 1
    assert now.fds <= warm.fds + FD_SLACK + 2 * workers, (
        f"descriptors grew: {warm} -> {now}; open now: {now.fd_targets}"
    )
    assert now.rss_kib <= warm.rss_kib + RSS_SLACK_KIB, f"memory grew: {warm} -> {now}"
    assert now.threads <= warm.threads, f"threads grew: {warm} -> {now}"


def cpu_seconds(ticks: int) -> float:
    return ticks / os.sysconf("SC_CLK_TCK")


def record_restarts(app: ManagerProcess) -> int:
    count = app.restarts()
    TALLY.restarts += count
    return count


def record_requests(phase: str, requests: int, failed: int) -> None:
    """Add the requests of one phase of a load scenario to the tally."""
    TALLY.requests[phase] = TALLY.requests.get(phase, 0) + requests
    TALLY.failed_requests[phase] = TALLY.failed_requests.get(phase, 0) + failed


def elapsed_since(start: float) -> float:
    return time.monotonic() - start


class SeededFailure(AssertionError):
    """A scenario failed; the message names the seed that replays it."""


def with_seed(seed: int, error: AssertionError) -> SeededFailure:
    return SeededFailure(f"seed {seed} (replay with {SEED_ENV}={seed}): {error}")
