"""The identifier types of the public API, and the types of the hooks.

A hook of ``ServiceManager.register_hooks`` can be annotated with these,
so that a type checker checks its arguments::

    def on_dead_worker(service_id: ServiceId, worker_id: WorkerId, exit_code: int) -> None: ...

    hook: OnDeadWorkerHook = on_dead_worker
"""

from cotyledon.core import ServiceId
from cotyledon.core import WorkerId
from cotyledon.runtime import OnDeadWorkerHook
from cotyledon.runtime import OnNewWorkerHook
from cotyledon.runtime import OnReloadHook
from cotyledon.runtime import OnTerminateHook

__all__ = [
    "OnDeadWorkerHook",
    "OnNewWorkerHook",
    "OnReloadHook",
    "OnTerminateHook",
    "ServiceId",
    "WorkerId",
]
