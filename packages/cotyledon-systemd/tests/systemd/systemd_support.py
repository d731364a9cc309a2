"""Helpers of the systemd tests: status snapshots made by hand."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

from cotyledon import ManagerPhase
from cotyledon import ManagerStatus
from cotyledon import ReloadOutcome
from cotyledon import ServiceState
from cotyledon import ServiceStatus
from cotyledon import SlotState
from cotyledon import WorkerStatus
from cotyledon.types import ServiceId
from cotyledon.types import WorkerId
from cotyledon_testkit import ManagerProcess

APPS_DIR = Path(__file__).parent

StartApp = Callable[..., ManagerProcess]


class FakeTime:
    """Monotonic seconds that move only when a test sets ``now``."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def service(
    name: str,
    ready: int,
    workers: int,
    *,
    restarts: int = 0,
    state: SlotState | None = None,
    pid: int = 1000,
    service_state: ServiceState = ServiceState.RUNNING,
    kill_in: float | None = 30.0,
) -> ServiceStatus:
    """A service with ``ready`` of its ``workers`` ready; the same id per name.

    Its workers have the pids ``pid``, ``pid + 1`` and so on. Stopping
    workers are killed in ``kill_in`` seconds (None: no deadline).
    """
    slots = tuple(
        WorkerStatus(
            worker_id=WorkerId(index),
            state=state or SlotState.RUNNING,
            pid=pid + index,
            ready=index < ready,
            restarts=restarts if index == 0 else 0,
            uptime=1.0,
            last_exit_code=None,
            kill_in=kill_in if state is SlotState.STOPPING else None,
        )
        for index in range(workers)
    )
    service_id = ServiceId(uuid.uuid5(uuid.NAMESPACE_URL, name))
    return ServiceStatus(service_id, name, workers, slots, service_state)


def manager(
    *services: ServiceStatus,
    phase: ManagerPhase = ManagerPhase.RUNNING,
    ready: bool = True,
    last_reload: ReloadOutcome | None = None,
) -> ManagerStatus:
    return ManagerStatus(phase, ready, services, last_reload)
