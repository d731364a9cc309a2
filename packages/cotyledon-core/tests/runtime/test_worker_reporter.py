"""The worker's readiness and heartbeat reports, without processes."""

from __future__ import annotations

from cotyledon.core import WorkerReport
from cotyledon.runtime._self import WorkerReporter


class _Recorder:
    def __init__(self) -> None:
        self.sent: list[WorkerReport] = []

    def send(self, report: WorkerReport) -> None:
        self.sent.append(report)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_reporter_sends_ready_once() -> None:
    control = _Recorder()
    reporter = WorkerReporter(control.send, None)

    reporter.ready()
    reporter.ready()

    assert control.sent == [WorkerReport.READY]


def test_reporter_rate_limits_heartbeats() -> None:
    control = _Recorder()
    clock = _Clock()
    reporter = WorkerReporter(control.send, 4.0, clock)

    for tick in range(100):
        clock.now = tick * 0.05
        reporter.heartbeat()

    # 5 s of calls, at most one per second (a quarter of the timeout).
    assert control.sent == [WorkerReport.HEARTBEAT] * 5


def test_reporter_without_timeout_sends_nothing() -> None:
    control = _Recorder()
    reporter = WorkerReporter(control.send, None)

    reporter.heartbeat()

    assert control.sent == []
