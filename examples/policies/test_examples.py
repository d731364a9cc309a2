"""The README's supervision policy examples: each matches its file here and
does what the README describes, as a real manager.

Each Python block of the README's policy sections is preceded by a line
``<!-- example: PATH -->`` (the block is the whole file) or ``<!-- excerpt:
PATH -->`` (the block is a run of the file's lines, unindented). The
overview's policies span hours, so they also run in the testkit's
simulator, with the arguments read from the README block itself. The
systemd unit and the pod spec are checked as far as this machine allows:
their commands run against a real manager, and ``systemd-analyze verify``
reads the unit.
"""

from __future__ import annotations

import ast
import configparser
import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from typing import Final
from typing import NamedTuple

import pytest

from cotyledon import ServiceState
from cotyledon import WorkerEventKind
from cotyledon.core import GIVE_UP_EXIT_STATUS
from cotyledon.core import StopReason
from cotyledon_testkit import ManagerAnnounced
from cotyledon_testkit import ManagerEventKind
from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import ServiceEnded
from cotyledon_testkit import Simulator
from cotyledon_testkit import WorkerBehaviour
from cotyledon_testkit import WorkerEnded
from cotyledon_testkit import WorkerSignalled
from cotyledon_testkit import WorkerStarted

EXAMPLES_DIR: Final = Path(__file__).parent
ROOT: Final = EXAMPLES_DIR.parents[1]
README: Final = ROOT / "README.md"
CHECKED_SECTIONS: Final = ("Supervision policies", "For operators")
"""The README sections whose Python blocks must all be examples."""

WAIT: Final = 30.0
"""Seconds to wait for a manager's reaction, on a loaded machine."""
HOUR: Final = 3600.0

PROBES: Final = ("startupProbe", "readinessProbe", "livenessProbe")
"""The probes of the README's pod spec."""

StartExample = Callable[..., ManagerProcess]


class Block(NamedTuple):
    """A fenced code block of the README."""

    section: str
    """The ``##`` heading above it."""
    language: str
    text: str
    line: int
    """The line number of its opening fence."""
    marker: tuple[str, str] | None
    """``("example" or "excerpt", path)`` from the line above the fence."""


def readme_blocks() -> list[Block]:
    """Return the fenced code blocks of the README, in order."""
    lines = README.read_text().splitlines(keepends=True)
    blocks = []
    section = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = re.fullmatch(r"```(\w*)\s*", line)
        if fence is None:
            index += 1
            continue
        end = next(j for j in range(index + 1, len(lines)) if lines[j].startswith("```"))
        found = re.fullmatch(r"<!-- (example|excerpt): (\S+) -->\s*", lines[index - 1])
        marker = (found.group(1), found.group(2)) if found else None
        text = "".join(lines[index + 1 : end])
        blocks.append(Block(section, fence.group(1), text, index + 1, marker))
        index = end + 1
    return blocks


def marked_blocks() -> list[Block]:
    return [block for block in readme_blocks() if block.marker is not None]


def only_block(section: str, language: str) -> str:
    """Return the text of the one block of ``language`` in a README section."""
    found = [b.text for b in readme_blocks() if b.section == section and b.language == language]
    assert len(found) == 1, f"expected one {language} block in {section!r}, found {len(found)}"
    return found[0]


def is_excerpt(block: str, source: str) -> bool:
    """Tell whether ``block`` is a run of lines of ``source``, once unindented."""
    expected_lines = block.splitlines()
    lines = source.splitlines()
    for start in range(len(lines) - len(expected_lines) + 1):
        window = "\n".join(lines[start : start + len(expected_lines)])
        if textwrap.dedent(window).splitlines() == expected_lines:
            return True
    return False


# The README blocks and the files


def test_readme_policy_blocks_are_examples() -> None:
    blocks = [
        block
        for block in readme_blocks()
        if block.section in CHECKED_SECTIONS and block.language == "python"
    ]

    unmarked = [block.line for block in blocks if block.marker is None]

    assert len(blocks) >= 5
    assert unmarked == [], f"README.md: Python blocks without an example marker at lines {unmarked}"


@pytest.mark.parametrize("block", marked_blocks(), ids=lambda block: f"line{block.line}")
def test_readme_block_matches_file(block: Block) -> None:
    assert block.marker is not None
    kind, path = block.marker
    source = (ROOT / path).read_text()

    if kind == "example":
        assert block.text == source, f"README.md line {block.line}: copy {path} into the block"
    else:
        assert is_excerpt(block.text, source), f"README.md line {block.line}: not a part of {path}"


def test_every_example_file_in_readme() -> None:
    files = {
        f"examples/policies/{path.name}"
        for path in EXAMPLES_DIR.glob("*.py")
        if not path.name.startswith("test_")
    }

    referenced = {block.marker[1] for block in marked_blocks() if block.marker is not None}

    assert referenced == files


# The examples as real managers


@pytest.fixture
def start_example(manager_process: Callable[..., ManagerProcess]) -> StartExample:
    """Start the ``main()`` of an example file, with ``env`` added to its environment."""

    def start(name: str, **env: str) -> ManagerProcess:
        return manager_process(f"{name}:main", sys_path=[EXAMPLES_DIR], env=env)

    return start


def _exit_codes(app: ManagerProcess, service: str) -> list[int | None]:
    return [event.exit_code for event in app.worker_events(service, kind=WorkerEventKind.EXITED)]


def test_overview_scheduler_exit_ends_manager(start_example: StartExample) -> None:
    app = start_example("overview")
    app.wait_ready(WAIT)

    app.kill_worker("scheduler", 0)
    status = app.wait_exit(WAIT)

    stops = app.worker_events("worker", kind=WorkerEventKind.EXITED)
    assert status == 128 + signal.SIGKILL
    assert sorted(event.worker_id for event in stops) == [0, 1, 2, 3]
    assert {event.stop_reason for event in stops} == {"shutdown"}


def test_importer_done_finishes_manager(start_example: StartExample, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text("1\n2\n")
    (inbox / "b.csv").write_text("3\n")
    app = start_example("importer", IMPORTER_INBOX=str(inbox))

    status = app.wait_exit(WAIT)

    log = app.log_text()
    assert status == 0
    assert _exit_codes(app, "importer") == [0]
    assert list(inbox.iterdir()) == []
    assert "imported a.csv: 2 rows" in log
    assert "Service importer finished" in log


def test_importer_without_inbox_not_restarted(start_example: StartExample, tmp_path: Path) -> None:
    app = start_example("importer", IMPORTER_INBOX=str(tmp_path / "missing"))

    status = app.wait_exit(WAIT)

    log = app.log_text()
    assert status == 0
    assert _exit_codes(app, "importer") == [3]
    assert "no inbox at" in log
    assert "Service importer finished" in log


def test_importer_failure_restarts(start_example: StartExample, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    unreadable = inbox / "unreadable.csv"
    unreadable.mkdir(parents=True)
    app = start_example("importer", IMPORTER_INBOX=str(inbox))
    app.wait_for(lambda: len(_exit_codes(app, "importer")) >= 2, WAIT, "two failed imports")

    unreadable.rmdir()
    status = app.wait_exit(WAIT)

    codes = _exit_codes(app, "importer")
    assert status == 0
    assert codes[-1] == 0
    assert set(codes[:-1]) == {1}


def test_give_up_stops_manager(start_example: StartExample) -> None:
    app = start_example("give_up")

    status = app.wait_exit(WAIT)

    web = app.worker_events("web", kind=WorkerEventKind.EXITED)
    assert status == GIVE_UP_EXIT_STATUS == 70
    assert _exit_codes(app, "fetcher") == [1, 1, 1, 1]
    assert [(event.exit_code, event.stop_reason) for event in web] == [(0, "shutdown")]
    assert len(app.manager_events(ManagerEventKind.GIVE_UP)) == 1
    assert "(3 restarts within 60.0 s): giving it up (stop)" in app.log_text()


def test_rolling_reload_one_slot_at_a_time(start_example: StartExample, tmp_path: Path) -> None:
    config = tmp_path / "web.conf"
    config.write_text("hello\n")
    app = start_example("rolling", WEB_CONFIG=str(config))
    app.wait_ready(WAIT)
    old = app.live_workers("web")
    config.write_text("bonjour\n")
    mark = app.mark()

    app.send_signal(signal.SIGHUP)
    app.wait_manager_event(ManagerEventKind.RELOADED, WAIT, after=mark)

    events = app.worker_events("web", after=mark)
    live = max_live = len(old)
    for event in events:
        if event.kind is WorkerEventKind.STARTED:
            live += 1
        elif event.kind is WorkerEventKind.EXITED:
            live -= 1
        max_live = max(max_live, live)
    order = [(event.kind.value, event.worker_id) for event in events]
    assert order == [
        (kind, worker_id) for worker_id in range(3) for kind in ("started", "ready", "exited")
    ]
    assert [event.stop_reason for event in events if event.kind is WorkerEventKind.EXITED] == [
        "restart"
    ] * 3
    assert {event.pid for event in events if event.kind is WorkerEventKind.EXITED} == set(
        old.values()
    )
    assert max_live == 4
    assert app.log_text().count("serves with greeting 'bonjour'") == 3


# The readiness example, the control socket, and the pod spec's probes


class Api(NamedTuple):
    app: ManagerProcess
    control: Path
    upstream: Path


@pytest.fixture
def api(start_example: StartExample, tmp_path: Path) -> Api:
    """The readiness example, with its control socket and upstream in ``tmp_path``."""
    control = tmp_path / "control"
    upstream = tmp_path / "upstream.sock"
    app = start_example("readiness", API_CONTROL_SOCKET=str(control), API_UPSTREAM=str(upstream))
    return Api(app, control, upstream)


@pytest.fixture
def upstream(api: Api) -> Iterator[socket.socket]:
    """Make the readiness example's upstream accept connections."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(api.upstream))
        listener.listen(64)
        yield listener


def pod_spec() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    spec: dict[str, Any] = yaml.safe_load(only_block("For operators", "yaml"))
    return spec


def probe_command(probe: str, control: Path) -> list[str]:
    """Return the command of a probe of the README's pod spec, made to run
    here: this interpreter, and the test's control socket."""
    container = pod_spec()["spec"]["containers"][0]
    command: list[str] = container[probe]["exec"]["command"]
    python, *arguments = command
    assert python == "python"
    return [sys.executable, *(str(control) if a == "/run/app/control" else a for a in arguments)]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=WAIT, check=False)


def test_probes_follow_readiness(api: Api) -> None:
    app, control, upstream_path = api
    live = probe_command("livenessProbe", control)
    app.wait_for(
        lambda: run(live).returncode == 0, WAIT, "the live probe to pass", poll_interval=0.2
    )

    not_ready = run(probe_command("readinessProbe", control))
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(upstream_path))
        listener.listen(64)
        app.wait_ready(WAIT)
        started = run(probe_command("startupProbe", control))
        ready = run(probe_command("readinessProbe", control))
        status = run([sys.executable, "-m", "cotyledon", "status", str(control)])

    assert (not_ready.returncode, json.loads(not_ready.stdout)["ready"]) == (1, False)
    assert (started.returncode, json.loads(started.stdout)["ready"]) == (0, True)
    assert ready.returncode == 0
    assert status.returncode == 0
    assert json.loads(status.stdout)["summary"] == "api 2/2"


@pytest.mark.usefixtures("upstream")
def test_hung_api_worker_replaced(api: Api) -> None:
    app = api.app
    app.wait_ready(WAIT)
    mark = app.mark()

    stopped = app.signal_worker("api", 0, signal.SIGSTOP)
    exited = app.wait_worker_exited("api", 0, WAIT, pid=stopped)
    back = app.wait_worker_ready("api", 0, WAIT, after=mark)

    log = app.log_text()
    assert (exited.exit_code, exited.stop_reason) == (-signal.SIGKILL, "hung")
    assert back.pid != stopped
    assert f"pid {stopped} is hung: no heartbeat for 2.0 s; stopping it" in log
    assert f"pid {stopped} did not stop within 5.0 s" in log


@pytest.mark.usefixtures("upstream")
def test_api_logs_status_on_stop(api: Api) -> None:
    app = api.app
    app.wait_ready(WAIT)

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit(WAIT)

    assert status == 0
    assert "Stopping; last status: stopping: api 2/2" in app.log_text()


def test_pod_spec_probes_name_socket() -> None:
    container = pod_spec()["spec"]["containers"][0]
    readiness_source = (EXAMPLES_DIR / "readiness.py").read_text()

    commands = {probe: container[probe]["exec"]["command"] for probe in PROBES}

    assert commands == {
        "startupProbe": ["python", "-m", "cotyledon", "ready", "/run/app/control"],
        "readinessProbe": ["python", "-m", "cotyledon", "ready", "/run/app/control"],
        "livenessProbe": ["python", "-m", "cotyledon", "live", "/run/app/control"],
    }
    assert {probe: container[probe]["timeoutSeconds"] for probe in PROBES} == dict.fromkeys(
        PROBES, 5
    )
    assert container["volumeMounts"] == [{"name": "run", "mountPath": "/run/app"}]
    assert '"/run/app/control"' in readiness_source


# The systemd unit


def unit_settings() -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment, method-assign]
    parser.read_string(only_block("For operators", "ini"))
    return dict(parser["Service"])


@pytest.mark.usefixtures("upstream")
def test_unit_reload_command_reloads(api: Api) -> None:
    app = api.app
    app.wait_ready(WAIT)
    mark = app.mark()
    command = unit_settings()["ExecReload"].replace("$MAINPID", str(app.pid)).split()

    result = run(command)
    reloaded = app.wait_manager_event(ManagerEventKind.RELOADED, WAIT, after=mark)

    assert result.returncode == 0
    assert reloaded.summary == "api 2/2"


def test_unit_starts_python_module() -> None:
    settings = unit_settings()

    assert re.fullmatch(r"/\S+/python3? -m \w+", settings["ExecStart"])
    assert settings["Type"] == "notify"


def test_unit_verified_by_systemd(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    settings = unit_settings()
    # systemd-analyze checks that the interpreter exists: use this one.
    _, module = settings["ExecStart"].split(" ", 1)
    text = only_block("For operators", "ini").replace(
        settings["ExecStart"], f"{sys.executable} {module}"
    )
    unit = tmp_path / "app.service"
    unit.write_text(text)

    result = run([analyze, "verify", str(unit)])

    assert result.stderr == ""
    assert result.returncode == 0


# The overview's policies, in the simulator


def readme_add_calls() -> dict[str, dict[str, Any]]:
    """Map each service class of the overview block to the keyword arguments
    of its ``manager.add`` call, evaluated."""
    block = next(
        b for b in marked_blocks() if b.marker == ("excerpt", "examples/policies/overview.py")
    )
    calls: dict[str, dict[str, Any]] = {}
    for node in ast.walk(ast.parse(block.text)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            service = node.args[0]
            assert isinstance(service, ast.Name)
            calls[service.id] = {
                keyword.arg: _evaluate(keyword.value) for keyword in node.keywords if keyword.arg
            }
    return calls


def _evaluate(node: ast.expr) -> Any:
    # The values are literals, and arithmetic on them such as 6 * 3600.
    return eval(compile(ast.Expression(node), "README.md", "eval"), {"__builtins__": {}})


def overview(behaviour: WorkerBehaviour | None = None, random: float = 0.5) -> Simulator:
    """Return a started simulation of the overview's services, with the
    README's policies and the manager's default shutdown timeout."""
    calls = readme_add_calls()
    sim = Simulator(random=lambda: random)
    sim.add("worker", behaviour=behaviour, **calls["Worker"])
    sim.add("scheduler", **calls["Scheduler"])
    return sim.start()


def _stops(sim: Simulator, reason: StopReason) -> list[float]:
    return [record.time for record in sim.records(WorkerSignalled) if record.reason is reason]


def test_overview_policies_as_documented() -> None:
    calls = readme_add_calls()

    assert calls["Worker"]["workers"] == 4
    assert calls["Worker"]["max_restarts"] == (5, 60)
    assert calls["Worker"]["max_age"] == 6 * HOUR
    assert calls["Scheduler"] == {"stop_manager_on_exit": True}


def test_overview_clean_exit_finishes_slot() -> None:
    sim = overview()

    sim.exit("worker", 0, code=0)
    sim.exit("worker", 1, code=3)
    sim.exit("worker", 2, code=1)

    delays = [(record.worker_id, record.respawn_delay) for record in sim.records(WorkerEnded)]
    assert delays == [(0, None), (1, None), (2, 0.0)]
    assert sorted(worker_id for _, worker_id in sim.processes("worker")) == [2, 3]


def test_overview_sixth_restart_gives_up() -> None:
    sim = overview(WorkerBehaviour(crash_after=1.0))

    sim.run_until_idle()

    restarts = [r for r in sim.records(WorkerEnded) if r.respawn_delay is not None]
    given_up = sim.records(ServiceEnded)
    # The 4 workers crash at 1 s, and again at 2 s: the sixth crash gives up.
    assert len(restarts) == 5
    assert [(r.service, r.state, r.time) for r in given_up] == [
        ("worker", ServiceState.GIVEN_UP, 2.0)
    ]
    assert sim.exit_status == GIVE_UP_EXIT_STATUS


def test_overview_unready_worker_restarted() -> None:
    sim = overview(WorkerBehaviour(ready_after=None))

    sim.advance(30.0)

    restarted = [r for r in sim.records(WorkerEnded) if r.stop_reason is StopReason.STARTUP_TIMEOUT]
    assert _stops(sim, StopReason.STARTUP_TIMEOUT) == [30.0] * 4
    assert [record.respawn_delay for record in restarted] == [0.0] * 4


def test_overview_silent_worker_stopped() -> None:
    sim = overview(WorkerBehaviour(hang_after=100.0))

    sim.advance(120.0)

    # The last heartbeat before 100 s is at 97.5 s: 4 per 10 s timeout.
    assert _stops(sim, StopReason.HUNG) == [107.5] * 4


@pytest.mark.parametrize(("random", "age"), [(0.0, 6 * HOUR), (0.99, 6 * HOUR * (1 - 0.099))])
def test_overview_worker_recycled(random: float, age: float) -> None:
    sim = overview(random=random)

    sim.advance(6 * HOUR)

    recycled = [r for r in sim.records(WorkerEnded) if r.stop_reason is StopReason.MAX_AGE]
    assert [record.time for record in recycled] == [pytest.approx(age)] * 4
    assert {record.respawn_delay for record in recycled} == {0.0}
    assert 0.9 * 6 * HOUR < age <= 6 * HOUR


def test_overview_rolling_reload_one_by_one() -> None:
    sim = overview(WorkerBehaviour(ready_after=1.0))
    sim.advance(1.0)
    start = len(sim.log)

    sim.send_signal(signal.SIGHUP)
    sim.advance(10.0)

    live = max_live = 4
    for record in sim.log[start:]:
        if isinstance(record, WorkerStarted) and record.service == "worker":
            live += 1
        elif isinstance(record, WorkerEnded) and record.service == "worker":
            live -= 1
        max_live = max(max_live, live)
    reloaded = [r.time for r in sim.records(ManagerAnnounced) if r.announcement == "reloaded"]
    assert max_live == 5
    assert reloaded == [5.0]


def test_overview_scheduler_exit_status() -> None:
    sim = overview()

    sim.exit("scheduler", 0, code=3)

    assert _stops(sim, StopReason.SHUTDOWN) == [0.0] * 4
    assert sim.exit_status == 3
