"""The listener that reports a manager's lifecycle to the harness.

``cotyledon_testkit._listener.create_listener``, the entry point, creates
it when the process runs under a harness.
"""

from __future__ import annotations

from typing import final

from cotyledon import LifecycleListener
from cotyledon import ManagerStatus
from cotyledon import WorkerEvent
from cotyledon_testkit._channel import report


@final
class HarnessListener(LifecycleListener):
    """Send each lifecycle event to the harness as a ``ProbeEvent``.

    Manager events are ``manager_ready``, ``manager_reloading``,
    ``manager_reloaded``, ``manager_stopping`` and ``manager_give_up``, with
    the status summary (and how the reload ended, for ``manager_reloaded``);
    worker events are ``worker_started``, ``worker_ready``,
    ``worker_reloaded`` and ``worker_exited``, with the service name, the
    worker id and the worker's pid (and ``exit_code`` and ``stop_reason``
    for an exit).
    """

    def __repr__(self) -> str:
        return "<HarnessListener>"

    def on_ready(self, status: ManagerStatus) -> None:
        report("manager_ready", summary=status.summary())

    def on_reloading(self, status: ManagerStatus) -> None:
        report("manager_reloading", summary=status.summary())

    def on_reloaded(self, status: ManagerStatus) -> None:
        outcome = status.last_reload
        report(
            "manager_reloaded",
            summary=status.summary(),
            reload_outcome=None if outcome is None else outcome.value,
        )

    def on_stopping(self, status: ManagerStatus) -> None:
        report("manager_stopping", summary=status.summary())

    def on_give_up(self, status: ManagerStatus) -> None:
        report("manager_give_up", summary=status.summary())

    def on_worker_event(self, event: WorkerEvent) -> None:
        report(
            f"worker_{event.kind.value}",
            service=event.service_name,
            worker_id=event.worker_id,
            worker_pid=event.pid,
            exit_code=event.exit_code,
            stop_reason=event.stop_reason,
        )
