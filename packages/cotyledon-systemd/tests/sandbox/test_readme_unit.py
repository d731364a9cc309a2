"""The systemd unit of the repository README, run by a real systemd.

The README shows the unit with a placeholder program. Here its settings
run the README's give-up example, whose fetcher service is given up at
once, to check that systemd then does what the README describes.
"""

from __future__ import annotations

import re
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
    restarted = services.events.wait(
        "manager_ready",
        after=services.events.events.index(given_up),
        where=lambda event: event.pid != given_up.pid,
    )
    properties = services.sandbox.show(
        unit, "NRestarts", "Type", "KillMode", "TimeoutStopUSec", "WatchdogUSec", "Restart"
    )
    console = [
        line.split(": ", 1)[1]
        for line in services.sandbox.console_text().splitlines()
        if line.startswith(f"{unit}: ")
    ]
    services.sandbox.systemctl("stop", unit)

    restarts = int(properties.pop("NRestarts"))
    assert restarted.pid != given_up.pid
    assert restarts >= 1
    assert "Main process exited, code=killed, status=6/ABRT" in console
    assert "Failed with result 'watchdog'." in console
    assert properties == {
        "Type": "notify",
        "KillMode": "mixed",
        "TimeoutStopUSec": "1min 30s",
        "WatchdogUSec": "30s",
        "Restart": "on-failure",
    }
