"""The lifecycle fields kept when a message to systemd fails."""

from __future__ import annotations

from cotyledon_systemd._backlog import LifecycleBacklog


def test_backlog_keeps_lifecycle_fields_in_order() -> None:
    backlog = LifecycleBacklog()

    backlog.add({"READY": 1, "MAINPID": 42, "STATUS": "web 2/2"})
    backlog.add({"WATCHDOG": 1})
    backlog.add({"RELOADING": 1, "MONOTONIC_USEC": 5, "STATUS": "reloading"})

    assert backlog.messages == [
        {"READY": 1, "MAINPID": 42},
        {"RELOADING": 1, "MONOTONIC_USEC": 5},
    ]


def test_backlog_stopping_drops_stale_ready() -> None:
    backlog = LifecycleBacklog()
    backlog.add({"READY": 1, "MAINPID": 42})
    backlog.add({"RELOADING": 1, "MONOTONIC_USEC": 5})

    backlog.add({"STOPPING": 1, "EXTEND_TIMEOUT_USEC": 5_000_000})
    backlog.add({"STOPPING": 1})

    assert backlog.messages == [{"STOPPING": 1, "MAINPID": 42}]


def test_backlog_new_reload_replaces_unsent_one() -> None:
    backlog = LifecycleBacklog()
    backlog.add({"READY": 1})
    backlog.add({"RELOADING": 1, "MONOTONIC_USEC": 5})
    backlog.add({"READY": 1})

    backlog.add({"RELOADING": 1, "MONOTONIC_USEC": 9})

    assert backlog.messages == [{"READY": 1}, {"RELOADING": 1, "MONOTONIC_USEC": 9}]


def test_backlog_forgets_sent_message() -> None:
    backlog = LifecycleBacklog()
    backlog.add({"READY": 1})

    backlog.remove_first()

    assert not backlog
