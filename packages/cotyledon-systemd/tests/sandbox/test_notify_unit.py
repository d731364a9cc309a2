"""Managers as Type=notify units of a real systemd (the machine's version)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sandbox_support import Services

pytestmark = pytest.mark.xdist_group("systemd-sandbox")


def test_notify_unit_active_once_workers_ready(services: Services, tmp_path: Path) -> None:
    gate_path = tmp_path / "gate.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
        gate.bind(str(gate_path))
        gate.listen()
        gate.settimeout(30)
        unit = services.install(
            "cot-ready", "gated_app", settings="Type=notify", GATE=str(gate_path)
        )
        services.sandbox.systemctl("start", "--no-block", unit)

        # Both workers wait at the gate: none is ready yet.
        waiting = [gate.accept()[0] for _ in range(2)]
        starting = services.sandbox.show(unit, "ActiveState", "SubState")
        for connection in waiting:
            connection.sendall(b"1")
            connection.close()
    ready = services.events.wait("manager_ready")
    # Returns once the start job is done: when systemd has READY=1.
    services.sandbox.systemctl("start", unit)
    started = services.sandbox.show(unit, "ActiveState", "SubState", "MainPID", "StatusText")

    assert starting == {"ActiveState": "activating", "SubState": "start"}
    assert started["ActiveState"] == "active"
    assert started["SubState"] == "running"
    assert started["MainPID"] == str(ready.pid)
    assert started["StatusText"] == "gated 2/2"


def test_watchdog_unit_restarted_when_loop_wedged(services: Services) -> None:
    unit = services.install(
        "cot-watchdog",
        "wedge_app",
        settings="Type=notify\nWatchdogSec=1s\nRestart=on-watchdog\nRestartSec=100ms",
    )
    services.sandbox.systemctl("start", "--no-block", unit)
    ready = services.events.wait("manager_ready")

    # Healthy for twice the watchdog timeout: four liveness ticks, each
    # half a timeout apart, each with its ping.
    services.events.wait_count("tick", 4, after=services.events.events.index(ready))
    healthy = services.sandbox.show(unit, "ActiveState", "NRestarts", "MainPID")
    mark = len(services.events.events)
    services.sandbox.systemctl("kill", "--kill-who=main", "--signal=SIGHUP", unit)
    services.events.wait("wedged", after=mark)
    restarted = services.events.wait(
        "manager_ready", after=mark, where=lambda event: event.pid != ready.pid
    )
    services.sandbox.systemctl("start", unit)
    after = services.sandbox.show(unit, "ActiveState", "NRestarts", "MainPID")

    assert healthy == {"ActiveState": "active", "NRestarts": "0", "MainPID": str(ready.pid)}
    assert after == {"ActiveState": "active", "NRestarts": "1", "MainPID": str(restarted.pid)}
    assert "watchdog timeout" in services.sandbox.console_text().lower()
