"""Testing tools for services built on cotyledon.

- ``FakeClock``: a clock that moves only when told, for the pure core.
- ``ManagerProcess``: runs a real manager in a fresh interpreter, receives
  the events that its services report, sends it signals, and cleans up
  every process it started.
- ``report``: called in the code under test to send an event to the
  harness that started it.
"""

from cotyledon_testkit._channel import EventChannel
from cotyledon_testkit._channel import ProbeEvent
from cotyledon_testkit._channel import report
from cotyledon_testkit._clock import FakeClock
from cotyledon_testkit._harness import ManagerProcess
from cotyledon_testkit._harness import WaitTimeoutError
from cotyledon_testkit._process_tree import live_processes_of_session

__all__ = [
    "EventChannel",
    "FakeClock",
    "ManagerProcess",
    "ProbeEvent",
    "WaitTimeoutError",
    "live_processes_of_session",
    "report",
]
