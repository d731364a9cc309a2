"""Cotyledon: long-running services made of supervised worker processes.

The public API is that of cotyledon 2.x: subclass ``Service``, add it to a
``ServiceManager`` with a number of workers, and call ``run()``.
"""

from cotyledon._errors import CotyledonError
from cotyledon._errors import InvalidArgumentError
from cotyledon._errors import InvalidTypeError
from cotyledon._errors import UnpicklableError
from cotyledon._manager import ServiceManager
from cotyledon._service import Service
from cotyledon.core import ManagerPhase
from cotyledon.core import ManagerStatus
from cotyledon.core import ReloadOutcome
from cotyledon.core import ServiceState
from cotyledon.core import ServiceStatus
from cotyledon.core import SlotState
from cotyledon.core import WorkerStatus
from cotyledon.runtime import CancelReload
from cotyledon.runtime import LifecycleListener
from cotyledon.runtime import WorkerEvent
from cotyledon.runtime import WorkerEventKind

__all__ = [
    "CancelReload",
    "CotyledonError",
    "InvalidArgumentError",
    "InvalidTypeError",
    "LifecycleListener",
    "ManagerPhase",
    "ManagerStatus",
    "ReloadOutcome",
    "Service",
    "ServiceManager",
    "ServiceState",
    "ServiceStatus",
    "SlotState",
    "UnpicklableError",
    "WorkerEvent",
    "WorkerEventKind",
    "WorkerStatus",
]
