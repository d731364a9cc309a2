"""The reload policy: what a reload asks of each running worker."""

from __future__ import annotations

from cotyledon.core._commands import StopReason
from cotyledon.core._commands import WorkerSignal
from cotyledon.core._spec import ReloadPolicy
from cotyledon.core._utils import assert_never


def reload_request(policy: ReloadPolicy) -> tuple[WorkerSignal, StopReason | None]:
    """Return the request to send to a running worker, and why it stops.

    In place, the worker runs ``reload()`` and stays; on restart, it stops
    gracefully and a new worker takes its slot at once.
    """
    if policy is ReloadPolicy.IN_PLACE:
        return WorkerSignal.RELOAD, None
    if policy is ReloadPolicy.RESTART or policy is ReloadPolicy.ROLLING:
        # A rolling reload stops the old worker once its replacement is ready.
        return WorkerSignal.TERMINATE, StopReason.RESTART
    assert_never(policy)
