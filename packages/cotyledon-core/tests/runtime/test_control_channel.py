"""The channel from workers to the master, in one process."""

from __future__ import annotations

import os
import selectors
import time

import pytest

from cotyledon.core import WorkerReport
from cotyledon.runtime._control import ControlClient
from cotyledon.runtime._control import ControlServer


def _receive(server: ControlServer, count: int, timeout: float = 10.0) -> list[WorkerReport]:
    received: list[WorkerReport] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(server, selectors.EVENT_READ)
        while len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"received {len(received)} of {count} reports in {timeout} s")
            selector.select(remaining)
            received.extend(report for _, report in server.receive())
    return received


def test_report_with_room_needs_no_thread() -> None:
    server = ControlServer()
    client = ControlClient(server.address)
    try:
        client.send(WorkerReport.READY)

        assert server.receive() == [(os.getpid(), WorkerReport.READY)]
        assert not client.sends_in_background
    finally:
        client.close()
        server.close()


def test_reports_wait_for_room_in_order() -> None:
    server = ControlServer()
    client = ControlClient(server.address)
    sent = [WorkerReport.HEARTBEAT] * 199 + [WorkerReport.RELOADED]
    try:
        # Nothing reads meanwhile: the master's queue fills up after a few
        # datagrams, and the rest wait in the sender thread.
        for report in sent:
            client.send(report)

        assert client.sends_in_background
        assert _receive(server, len(sent)) == sent
    finally:
        client.close()
        server.close()


def test_report_to_gone_master_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    server = ControlServer()
    client = ControlClient(server.address)
    server.close()

    client.send(WorkerReport.READY)
    client.close()

    assert "Could not send the report b'" in caplog.text
