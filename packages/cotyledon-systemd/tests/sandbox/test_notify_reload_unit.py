"""A manager as a Type=notify-reload unit, which needs systemd 254."""

from __future__ import annotations

import pytest
from sandbox_support import Services

pytestmark = pytest.mark.xdist_group("systemd-sandbox")

SYSTEMD_VERSION = 254
"""252, the machine's systemd, does not know Type=notify-reload and runs
such a unit as Type=simple; 254 has it."""


def test_notify_reload_unit_reload_completes(services: Services) -> None:
    unit = services.install("cot-reload", "reload_app", settings="Type=notify-reload")
    services.sandbox.systemctl("start", "--no-block", unit)
    services.events.wait("manager_ready")
    services.sandbox.systemctl("start", unit)
    mark = len(services.events.events)

    # systemd sends SIGHUP, waits for RELOADING=1 with a MONOTONIC_USEC=
    # newer than the signal, then for READY=1: only then does this return.
    reload = services.sandbox.systemctl("reload", unit, check=False)
    reloaded = services.events.wait("manager_reloaded", after=mark)
    workers = services.events.wait_count("reload", 2, after=mark)
    state = services.sandbox.show(unit, "Type", "ActiveState", "SubState", "StatusText")

    assert reload.returncode == 0, reload.stderr
    assert reloaded.pid == int(services.sandbox.show(unit, "MainPID")["MainPID"])
    assert {event["worker_id"] for event in workers} == {0, 1}
    assert state == {
        "Type": "notify-reload",
        "ActiveState": "active",
        "SubState": "running",
        "StatusText": "web 2/2",
    }
