"""The systemd unit of the repository README, run by a real systemd.

The README shows the unit with a placeholder program. Here its settings
run the README's give-up example, whose fetcher service is given up at
once, and a manager whose given-up service is set to continue, to check
that systemd then does what the README describes.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path
from typing import Final

import pytest
from sandbox_support import Services

pytestmark = pytest.mark.xdist_group("systemd-sandbox")

ROOT: Final = Path(__file__).parents[4]
EXAMPLES: Final = ROOT / "examples" / "policies"


def readme_unit_settings() -> str:
    """Return the [Service] settings of the README's unit, but its ExecStart."""
    readme = (ROOT / "README.md").read_text()
    operators = readme[readme.index("## For operators") :]
    found = re.search(r"```ini\n(.*?)```", operators, re.DOTALL)
    assert found is not None, "README.md: no ini block in 'For operators'"
    lines = found.group(1).splitlines()
    assert lines[0] == "[Service]"
    return "\n".join(
        line for line in lines[1:] if not line.startswith(("#", "ExecStart=")) and line.strip()
    )


def test_readme_unit_restarts_after_give_up(services: Services) -> None:
    unit = services.install(
        "cot-readme", "give_up:main", settings=readme_unit_settings(), sys_path=[EXAMPLES]
    )
    services.sandbox.systemctl("start", "--no-block", unit)

    given_up = services.events.wait("manager_give_up")
    first_run = services.events.events.index(given_up)
    # The restarted master reports its first worker.
    services.events.wait(
        "worker_started", after=first_run, where=lambda event: event.pid != given_up.pid
    )
    console = services.wait_console(unit, "Scheduled restart job, restart counter is at 1.")
    properties = services.sandbox.show(
        unit, "NRestarts", "Type", "KillMode", "TimeoutStopUSec", "WatchdogUSec", "Restart"
    )
    services.sandbox.systemctl("stop", unit)
    same_run = [event for event in services.events.events[first_run:] if event.pid == given_up.pid]
    exits = [event for event in same_run if event.kind == "worker_exited"]

    restarts = int(properties.pop("NRestarts"))
    assert [event.kind for event in same_run][:2] == ["manager_give_up", "manager_stopping"]
    assert [(e["service"], e["exit_code"], e["stop_reason"]) for e in exits] == [
        ("web", 0, "shutdown")
    ]
    assert "Main process exited, code=exited, status=70/SOFTWARE" in console
    assert "Failed with result 'exit-code'." in console
    assert [line for line in console if "code=killed" in line or "atchdog" in line] == []
    assert restarts >= 1
    assert properties == {
        "Type": "notify",
        "KillMode": "mixed",
        "TimeoutStopUSec": "1min 30s",
        "WatchdogUSec": "30s",
        "Restart": "on-failure",
    }


def test_readme_unit_stays_active_after_continue(services: Services, tmp_path: Path) -> None:
    gate_path = tmp_path / "gate.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
        gate.bind(str(gate_path))
        gate.listen()
        # The README's unit, with a watchdog short enough to expire within
        # the test. The last WatchdogSec= wins.
        unit = services.install(
            "cot-readme-continue",
            "give_up_continue_app",
            settings=readme_unit_settings() + "\nWatchdogSec=1s",
            GATE=str(gate_path),
        )
        services.sandbox.systemctl("start", "--no-block", unit)
        ready = services.events.wait("manager_ready")
    # The gate is now closed, so fetcher's worker fails, and so does the next one.
    given_up = services.events.wait("manager_give_up")
    after = services.events.events.index(given_up)

    # Ticks go on, with their pings, for over three watchdog timeouts after
    # the give-up. Event times are the master's CLOCK_MONOTONIC.
    services.events.wait("tick", after=after, where=lambda event: event.time - given_up.time > 3.0)
    state = services.sandbox.show(unit, "ActiveState", "SubState", "NRestarts", "MainPID")
    status_text = services.sandbox.show(unit, "StatusText")["StatusText"]
    web_exits = [
        event
        for event in services.events.events
        if event.kind == "worker_exited" and event["service"] == "web"
    ]

    assert given_up.pid == ready.pid
    assert state == {
        "ActiveState": "active",
        "SubState": "running",
        "NRestarts": "0",
        "MainPID": str(ready.pid),
    }
    assert status_text == (
        "fetcher 0/1 given-up, web 1/1 (1 restart); given up: fetcher; "
        "last exit: fetcher(0) exited with status 1"
    )
    assert web_exits == []
    assert [line for line in services.console(unit) if "atchdog" in line] == []
