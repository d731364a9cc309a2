"""The mailsorter program as real processes: sorting, a killed worker, a stop."""

from __future__ import annotations

import signal

from mailsorter.app import SORTER_WORKERS
from mailsorter.folders import Folders
from mailsorter.services import owner_of

from cotyledon import WorkerEventKind
from cotyledon_testkit import ManagerProcess

WAIT = 30.0
"""Seconds to wait for a message to be sorted, on a loaded machine."""
POLL = 0.05


def _names_owned_by(worker_id: int, count: int) -> list[str]:
    """Return ``count`` message names that the sorter ``worker_id`` takes."""
    names = (f"message-{number}" for number in range(1000))
    owned = [name for name in names if owner_of(f"{name}.eml", SORTER_WORKERS) == worker_id]
    return owned[:count]


def _wait_sorted(manager: ManagerProcess, folders: Folders, name: str, domain: str) -> None:
    path = folders.sorted_path(name, domain)
    manager.wait_for(path.exists, WAIT, f"{path} to exist", poll_interval=POLL)


def test_mailsorter_sorts_by_domain(mailsorter: ManagerProcess, folders: Folders) -> None:
    folders.drop("first", to="Alice <alice@Example.org>")
    folders.drop("second", to="nobody")

    _wait_sorted(mailsorter, folders, "first", "example.org")
    _wait_sorted(mailsorter, folders, "second", "unsorted")

    assert list(folders.inbox.iterdir()) == []


def test_mailsorter_killed_worker_comes_back(mailsorter: ManagerProcess, folders: Folders) -> None:
    mark = mailsorter.mark()

    old = mailsorter.kill_worker("sorter", 1)
    exited = mailsorter.wait_worker_exited("sorter", 1, pid=old)
    back = mailsorter.wait_worker_ready("sorter", 1, after=mark)
    for name in _names_owned_by(1, 3):
        folders.drop(name, to=f"{name}@example.net")
        _wait_sorted(mailsorter, folders, name, "example.net")

    assert exited.exit_code == -signal.SIGKILL
    assert back.pid != old
    assert mailsorter.restarts("sorter") == 1


def test_mailsorter_sigterm_exits_zero(mailsorter: ManagerProcess) -> None:
    mailsorter.send_signal(signal.SIGTERM)

    status = mailsorter.wait_exit()

    exits = mailsorter.worker_events(kind=WorkerEventKind.EXITED)
    assert status == 0
    assert mailsorter.live_workers() == {}
    assert [(event.exit_code, event.stop_reason) for event in exits] == [(0, "shutdown")] * 2
