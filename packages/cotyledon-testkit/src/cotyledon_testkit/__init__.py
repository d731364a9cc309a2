"""Testing tools for services built on cotyledon.

- ``FakeClock``: a clock that moves only when told, for the pure core.
- ``ManagerProcess``: runs a real manager in a fresh interpreter, receives
  the events that its services report, sends it signals, and cleans up
  every process it started.
- ``Simulator``: the pure supervisor run against fake processes on a
  fake clock, to test restart backoff, shutdown deadlines and reloads in
  microseconds.
- ``report``: called in the code under test to send an event to the
  harness that started it.
- ``NotifyReceiver``: a notification socket in systemd's place, that
  records the sd_notify messages sent to it.

The package imports each of these on first use, so that a manager that
finds the testkit's lifecycle listener among the installed entry points
(which happens in any environment where the testkit is installed) loads
the listener alone, not the harness and the simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from cotyledon_testkit._channel import EventChannel
    from cotyledon_testkit._channel import InvalidEventError
    from cotyledon_testkit._channel import ProbeEvent
    from cotyledon_testkit._channel import report
    from cotyledon_testkit._clock import FakeClock
    from cotyledon_testkit._harness import ManagerExitedError
    from cotyledon_testkit._harness import ManagerProcess
    from cotyledon_testkit._harness import StartManager
    from cotyledon_testkit._harness import WaitError
    from cotyledon_testkit._harness import WaitTimeoutError
    from cotyledon_testkit._harness import close_all_managers
    from cotyledon_testkit._harness import open_managers
    from cotyledon_testkit._lifecycle_events import ManagerEventKind
    from cotyledon_testkit._lifecycle_events import ManagerLifecycleEvent
    from cotyledon_testkit._lifecycle_events import WorkerLifecycleEvent
    from cotyledon_testkit._notify import NotifyMessage
    from cotyledon_testkit._notify import NotifyReceiver
    from cotyledon_testkit._notify import parse_notify_payload
    from cotyledon_testkit._process_tree import live_processes_of_session
    from cotyledon_testkit._simulation_log import HooksRun
    from cotyledon_testkit._simulation_log import ManagerAnnounced
    from cotyledon_testkit._simulation_log import ManagerExited
    from cotyledon_testkit._simulation_log import ManagerSignalled
    from cotyledon_testkit._simulation_log import ManagerStarted
    from cotyledon_testkit._simulation_log import ServiceEnded
    from cotyledon_testkit._simulation_log import ServiceReconfigured
    from cotyledon_testkit._simulation_log import SimRecord
    from cotyledon_testkit._simulation_log import WorkerEnded
    from cotyledon_testkit._simulation_log import WorkerKilled
    from cotyledon_testkit._simulation_log import WorkerReady
    from cotyledon_testkit._simulation_log import WorkerReloaded
    from cotyledon_testkit._simulation_log import WorkerSignalled
    from cotyledon_testkit._simulation_log import WorkerStarted
    from cotyledon_testkit._simulation_log import WorkerStartFailed
    from cotyledon_testkit._simulator import FakeProcess
    from cotyledon_testkit._simulator import SimulationLimitError
    from cotyledon_testkit._simulator import Simulator
    from cotyledon_testkit._simulator import WorkerBehaviour

_SOURCES: dict[str, str] = {
    "EventChannel": "cotyledon_testkit._channel",
    "InvalidEventError": "cotyledon_testkit._channel",
    "ProbeEvent": "cotyledon_testkit._channel",
    "report": "cotyledon_testkit._channel",
    "FakeClock": "cotyledon_testkit._clock",
    "ManagerExitedError": "cotyledon_testkit._harness",
    "ManagerProcess": "cotyledon_testkit._harness",
    "StartManager": "cotyledon_testkit._harness",
    "WaitError": "cotyledon_testkit._harness",
    "WaitTimeoutError": "cotyledon_testkit._harness",
    "close_all_managers": "cotyledon_testkit._harness",
    "open_managers": "cotyledon_testkit._harness",
    "ManagerEventKind": "cotyledon_testkit._lifecycle_events",
    "ManagerLifecycleEvent": "cotyledon_testkit._lifecycle_events",
    "WorkerLifecycleEvent": "cotyledon_testkit._lifecycle_events",
    "NotifyMessage": "cotyledon_testkit._notify",
    "NotifyReceiver": "cotyledon_testkit._notify",
    "parse_notify_payload": "cotyledon_testkit._notify",
    "live_processes_of_session": "cotyledon_testkit._process_tree",
    "HooksRun": "cotyledon_testkit._simulation_log",
    "ManagerAnnounced": "cotyledon_testkit._simulation_log",
    "ManagerExited": "cotyledon_testkit._simulation_log",
    "ManagerSignalled": "cotyledon_testkit._simulation_log",
    "ManagerStarted": "cotyledon_testkit._simulation_log",
    "ServiceEnded": "cotyledon_testkit._simulation_log",
    "ServiceReconfigured": "cotyledon_testkit._simulation_log",
    "SimRecord": "cotyledon_testkit._simulation_log",
    "WorkerEnded": "cotyledon_testkit._simulation_log",
    "WorkerKilled": "cotyledon_testkit._simulation_log",
    "WorkerReady": "cotyledon_testkit._simulation_log",
    "WorkerReloaded": "cotyledon_testkit._simulation_log",
    "WorkerSignalled": "cotyledon_testkit._simulation_log",
    "WorkerStarted": "cotyledon_testkit._simulation_log",
    "WorkerStartFailed": "cotyledon_testkit._simulation_log",
    "FakeProcess": "cotyledon_testkit._simulator",
    "SimulationLimitError": "cotyledon_testkit._simulator",
    "Simulator": "cotyledon_testkit._simulator",
    "WorkerBehaviour": "cotyledon_testkit._simulator",
}

__all__ = [
    "EventChannel",
    "FakeClock",
    "FakeProcess",
    "HooksRun",
    "InvalidEventError",
    "ManagerAnnounced",
    "ManagerEventKind",
    "ManagerExited",
    "ManagerExitedError",
    "ManagerLifecycleEvent",
    "ManagerProcess",
    "ManagerSignalled",
    "ManagerStarted",
    "NotifyMessage",
    "NotifyReceiver",
    "ProbeEvent",
    "ServiceEnded",
    "ServiceReconfigured",
    "SimRecord",
    "SimulationLimitError",
    "Simulator",
    "StartManager",
    "WaitError",
    "WaitTimeoutError",
    "WorkerBehaviour",
    "WorkerEnded",
    "WorkerKilled",
    "WorkerLifecycleEvent",
    "WorkerReady",
    "WorkerReloaded",
    "WorkerSignalled",
    "WorkerStartFailed",
    "WorkerStarted",
    "close_all_managers",
    "live_processes_of_session",
    "open_managers",
    "parse_notify_payload",
    "report",
]


if not TYPE_CHECKING:
    # Hidden from type checkers, which would otherwise accept any name.

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is None:
            raise AttributeError(f"module 'cotyledon_testkit' has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*globals(), *_SOURCES])
