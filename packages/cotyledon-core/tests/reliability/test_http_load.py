"""The httpservice example under load: reloads fail no request, kills few.

The master of the example binds a free port of 127.0.0.1 and its workers
share the socket. A bounded load generator sends requests to that port
only, through three phases:

- steady: no fault, and no request may fail;
- reload: SIGHUP after SIGHUP, each replacing every worker one at a time,
  and no request may fail;
- kill: SIGKILL of workers that the seed picks, at moments that the seed
  picks, and only requests in flight in a killed worker may fail.

Then the load stops, and SIGTERM must end the master with status 0 and
leave no process behind.
"""

from __future__ import annotations

import json
import random
import signal
from pathlib import Path

from conftest import StartApp
from http_load import LoadGenerator
from http_load import PhaseFigures
from reliability_support import HTTPSERVICE_DIR
from reliability_support import TALLY
from reliability_support import check_nothing_left
from reliability_support import check_slots
from reliability_support import record_requests
from reliability_support import record_restarts
from reliability_support import scaled
from reliability_support import wait_settled
from reliability_support import with_seed

from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess

SERVICE = "http"
WORKERS = 3
RELOADS = scaled(4, 40)
KILLS = scaled(5, 60)

CLIENTS = 6
DELAY_MS = 10
# At most CLIENTS / MIN_INTERVAL requests per second (300), and at most
# MAX_REQUESTS in all: roughly ten times the requests that each version
# sent in its runs on a 2-core machine.
MIN_INTERVAL = 0.02
MAX_REQUESTS = scaled(20_000, 200_000)
SOCKET_TIMEOUT = 10.0

STEADY_REQUESTS = 30
RELOAD_TIMEOUT = 60.0
PROGRESS_TIMEOUT = 20.0
POLL = 0.02


def _read_port(path: Path) -> int | None:
    try:
        return int(path.read_text(encoding="ascii"))
    except (FileNotFoundError, ValueError):
        return None


def _write_label(path: Path, label: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({"label": label}), encoding="utf-8")
    temporary.replace(path)


def _wait_successes(
    app: ManagerProcess, load: LoadGenerator, phase: PhaseFigures, count: int
) -> None:
    """Wait until ``count`` more requests of ``phase`` have succeeded."""
    target = load.snapshot(phase).succeeded + count

    def reached() -> bool:
        if load.exhausted:
            raise AssertionError(f"the load stopped after {load.max_requests} requests")
        return load.snapshot(phase).succeeded >= target

    app.wait_for(
        reached,
        PROGRESS_TIMEOUT,
        f"{count} more successful requests in phase {phase.name}",
        poll_interval=POLL,
    )


def _wait_drained(app: ManagerProcess, load: LoadGenerator, phase: PhaseFigures) -> None:
    """Wait until every request started in ``phase`` has ended."""
    app.wait_for(
        lambda: load.snapshot(phase).in_flight == 0,
        4 * SOCKET_TIMEOUT,
        f"the requests of phase {phase.name} to end",
        poll_interval=POLL,
    )


def _report(phase: PhaseFigures) -> None:
    print(f"http load, {phase.summary()}")
    record_requests(phase.name, phase.started, phase.failed)


def _reload_workers(
    app: ManagerProcess,
    load: LoadGenerator,
    phase: PhaseFigures,
    rng: random.Random,
    config: Path,
) -> None:
    """Reload RELOADS times, each with a new label, at moments the seed picks."""
    for number in range(RELOADS):
        label = f"reload-{number}"
        _write_label(config, label)
        before = set(app.live_workers(SERVICE).values())
        mark = app.mark()
        app.send_signal(signal.SIGHUP)
        TALLY.faults += 1
        app.wait_manager_event(ManagerEventKind.RELOADED, RELOAD_TIMEOUT, after=mark)
        check_slots(app)
        after = set(app.live_workers(SERVICE).values())
        assert not before & after, f"reload {number} kept workers {before & after}"
        app.wait_for(
            lambda label=label: label in load.snapshot(phase).labels,  # type: ignore[misc]
            PROGRESS_TIMEOUT,
            f"a response with label {label}",
            poll_interval=POLL,
        )
        _wait_successes(app, load, phase, rng.randint(1, 20))


def _kill_workers(
    app: ManagerProcess, load: LoadGenerator, phase: PhaseFigures, rng: random.Random
) -> None:
    """Kill KILLS workers that the seed picks, each once its slot serves again."""
    for _ in range(KILLS):
        worker_id = rng.randrange(WORKERS)
        mark = app.mark()
        app.kill_worker(SERVICE, worker_id)
        TALLY.faults += 1
        app.wait_worker_ready(SERVICE, worker_id, after=mark)
        check_slots(app)
        _wait_successes(app, load, phase, rng.randint(1, 20))


def _run(start_app: StartApp, seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    port_file = tmp_path / "port"
    config = tmp_path / "config.json"
    _write_label(config, "first")
    env = {
        "RELIABILITY_PORT_FILE": str(port_file),
        "RELIABILITY_CONFIG": str(config),
        "RELIABILITY_WORKERS": str(WORKERS),
    }
    app = start_app("http_service_app", env=env, sys_path=[HTTPSERVICE_DIR])
    port = app.wait_for(
        lambda: _read_port(port_file), what="the port file", fail_on_exit=True, poll_interval=POLL
    )
    app.wait_ready()
    load = LoadGenerator(
        port,
        clients=CLIENTS,
        max_requests=MAX_REQUESTS,
        min_interval=MIN_INTERVAL,
        timeout=SOCKET_TIMEOUT,
        delay_ms=DELAY_MS,
        first_phase="steady",
    )
    with load:
        steady = load.phases[0]
        _wait_successes(app, load, steady, STEADY_REQUESTS)
        reload = load.begin_phase("reload")
        _reload_workers(app, load, reload, rng, config)
        kill = load.begin_phase("kill")
        # Kills start once every request of the earlier phases has ended,
        # so that a request that a kill breaks counts in the kill phase.
        _wait_drained(app, load, steady)
        _wait_drained(app, load, reload)
        _kill_workers(app, load, kill, rng)
    # Leaving the block has stopped the clients: every request has ended.
    wait_settled(app, {SERVICE: WORKERS})
    figures = [load.snapshot(phase) for phase in (steady, reload, kill)]
    for phase in figures:
        _report(phase)

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit(timeout=60)
    restarts = record_restarts(app)

    steady, reload, kill = figures
    assert steady.failed == 0, steady.summary()
    assert reload.failed == 0, reload.summary()
    # Each client has at most one request outstanding, so a killed worker
    # takes at most CLIENTS requests in flight with it. The connections it
    # had not accepted stay in the backlog of the socket, which the master
    # keeps open, and another worker serves them.
    assert kill.failed <= KILLS * CLIENTS, kill.summary()
    assert restarts == KILLS, f"{restarts} unexpected worker exits for {KILLS} kills"
    assert status == 0
    check_nothing_left(app)


def test_http_service_under_load(start_app: StartApp, seed: int, tmp_path: Path) -> None:
    try:
        _run(start_app, seed, tmp_path)
    except AssertionError as error:
        raise with_seed(seed, error) from error
