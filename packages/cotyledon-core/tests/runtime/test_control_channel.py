"""The channel from workers to the master, in one process."""

from __future__ import annotations

import os
import selectors
import signal
import time
from collections.abc import Iterator

import pytest

from cotyledon.core import WorkerReport
from cotyledon.core import WorkerReported
from cotyledon.runtime._control import ControlClient
from cotyledon.runtime._control import ControlServer

# The heartbeats that fill a pipe of 64 KiB: each report line is about 16 bytes.
PIPE_FILLING_REPORTS = 6000


@pytest.fixture
def server() -> Iterator[ControlServer]:
    control = ControlServer()
    yield control
    control.close()


@pytest.fixture
def client(server: ControlServer) -> Iterator[ControlClient]:
    control = ControlClient(server.pipe_write)
    yield control
    control.close()


def _receive(server: ControlServer, count: int, timeout: float = 10.0) -> list[WorkerReport]:
    received: list[WorkerReport] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(server.pipe_read, selectors.EVENT_READ)
        while len(received) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"received {len(received)} of {count} reports in {timeout} s")
            selector.select(remaining)
            received.extend(reported.report for reported in server.receive())
    return received


def test_report_with_room_needs_no_thread(server: ControlServer, client: ControlClient) -> None:
    client.send(WorkerReport.READY)

    assert server.receive() == [WorkerReported(os.getpid(), WorkerReport.READY)]
    assert not client.sends_in_background


def test_reload_report_carries_the_time_of_its_request(
    server: ControlServer, client: ControlClient
) -> None:
    received_at = time.monotonic()

    client.send(WorkerReport.RELOADED, received_at)

    assert server.receive() == [WorkerReported(os.getpid(), WorkerReport.RELOADED, received_at)]


def test_reports_wait_for_room_in_order(server: ControlServer, client: ControlClient) -> None:
    sent = [WorkerReport.HEARTBEAT] * (PIPE_FILLING_REPORTS - 1) + [WorkerReport.RELOADED]

    # Nothing reads meanwhile: the pipe fills up after thousands of lines,
    # and the rest wait in the sender thread.
    for report in sent:
        client.send(report)

    assert client.sends_in_background
    assert _receive(server, len(sent)) == sent


def test_pipe_holds_a_thousand_reports(server: ControlServer) -> None:
    client = ControlClient(server.pipe_write)
    sent = [WorkerReport.READY] * 1000

    for report in sent:
        client.send(report)

    assert not client.sends_in_background
    assert _receive(server, len(sent)) == sent


def test_pipe_line_split_across_reads(server: ControlServer) -> None:
    first, second = f"{os.getpid()} ready\n".encode().split(b"re")
    os.write(server.pipe_write, first)

    assert server.receive() == []

    os.write(server.pipe_write, b"re" + second)
    assert server.receive() == [WorkerReported(os.getpid(), WorkerReport.READY)]


def test_invalid_report_is_logged_and_skipped(
    server: ControlServer, caplog: pytest.LogCaptureFixture
) -> None:
    os.write(server.pipe_write, b"garbage\n" + f"{os.getpid()} ready\n".encode())

    assert server.receive() == [WorkerReported(os.getpid(), WorkerReport.READY)]
    assert "Ignored an invalid report on the control channel: b'garbage'" in caplog.text


def test_report_down_broken_pipe_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    client = ControlClient(write_end)

    client.send(WorkerReport.READY)
    os.close(write_end)

    assert "Could not send the report b'" in caplog.text
    assert "Broken pipe" in caplog.text


def test_lost_reports_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    client = ControlClient(write_end)

    for _ in range(3):
        client.send(WorkerReport.HEARTBEAT)
    os.close(write_end)

    assert caplog.text.count("Could not send the report") == 1


def test_forked_child_reports_nothing_and_never_blocks(server: ControlServer) -> None:
    client = ControlClient(server.pipe_write)
    # A thread of the worker is inside send() when the fork happens: the
    # child's copy of the lock stays held for good.
    with client._lock:
        pid = os.fork()
        if pid == 0:
            client.send(WorkerReport.HEARTBEAT)
            os._exit(0)
    deadline = time.monotonic() + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the forked child blocked in send()")
        time.sleep(0.01)

    assert os.waitstatus_to_exitcode(status) == 0
    assert server.receive() == []
