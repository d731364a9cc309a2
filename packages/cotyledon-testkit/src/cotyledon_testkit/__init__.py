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
"""

from cotyledon_testkit._channel import EventChannel
from cotyledon_testkit._channel import ProbeEvent
from cotyledon_testkit._channel import report
from cotyledon_testkit._clock import FakeClock
from cotyledon_testkit._harness import ManagerExitedError
from cotyledon_testkit._harness import ManagerProcess
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

__all__ = [
    "EventChannel",
    "FakeClock",
    "FakeProcess",
    "HooksRun",
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
