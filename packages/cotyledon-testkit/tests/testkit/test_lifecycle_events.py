"""The live worker map built from lifecycle events, with no process."""

from __future__ import annotations

from cotyledon_testkit import ProbeEvent
from cotyledon_testkit._lifecycle_events import live_workers

MASTER = 10


def _event(kind: str, worker_pid: int) -> ProbeEvent:
    fields = {
        "service": "web",
        "worker_id": 0,
        "worker_pid": worker_pid,
        "exit_code": 0 if kind == "worker_exited" else None,
        "stop_reason": None,
    }
    return ProbeEvent(kind, MASTER, 0.0, fields)


def test_live_workers_keeps_old_during_rolling() -> None:
    events = [_event("worker_started", 100), _event("worker_started", 200)]

    assert live_workers(events) == {("web", 0): 100}


def test_live_workers_replacement_takes_over() -> None:
    events = [
        _event("worker_started", 100),
        _event("worker_started", 200),
        _event("worker_exited", 100),
    ]

    assert live_workers(events) == {("web", 0): 200}


def test_live_workers_drops_exited_replacement() -> None:
    events = [
        _event("worker_started", 100),
        _event("worker_started", 200),
        _event("worker_exited", 200),
    ]

    assert live_workers(events) == {("web", 0): 100}
