"""The process runtime of cotyledon: the only layer that touches the OS.

It turns signals, child exits and timers into core events, carries out the
supervisor's commands with real processes, and runs the worker side of each
process.
"""

from cotyledon.runtime._clock import MonotonicClock
from cotyledon.runtime._clock import random_fraction
from cotyledon.runtime._exits import describe_exit
from cotyledon.runtime._exits import signal_name
from cotyledon.runtime._hooks import CancelReload
from cotyledon.runtime._hooks import Hooks
from cotyledon.runtime._hooks import OnDeadWorkerHook
from cotyledon.runtime._hooks import OnNewWorkerHook
from cotyledon.runtime._hooks import OnReloadHook
from cotyledon.runtime._hooks import OnTerminateHook
from cotyledon.runtime._listeners import LifecycleListener
from cotyledon.runtime._listeners import WorkerEvent
from cotyledon.runtime._listeners import WorkerEventKind
from cotyledon.runtime._master import MasterLoop
from cotyledon.runtime._operator import query_control_socket
from cotyledon.runtime._platform import default_context
from cotyledon.runtime._proctitle import program_name
from cotyledon.runtime._requests import RequestQueue
from cotyledon.runtime._self import HEARTBEATS_PER_TIMEOUT
from cotyledon.runtime._self import report_heartbeat
from cotyledon.runtime._self import report_ready
from cotyledon.runtime._self import request_own_termination
from cotyledon.runtime._signals import SignalWakeup
from cotyledon.runtime._signals import install_master_signals
from cotyledon.runtime._worker import WorkerRecipe

__all__ = [
    "HEARTBEATS_PER_TIMEOUT",
    "CancelReload",
    "Hooks",
    "LifecycleListener",
    "MasterLoop",
    "MonotonicClock",
    "OnDeadWorkerHook",
    "OnNewWorkerHook",
    "OnReloadHook",
    "OnTerminateHook",
    "RequestQueue",
    "SignalWakeup",
    "WorkerEvent",
    "WorkerEventKind",
    "WorkerRecipe",
    "default_context",
    "describe_exit",
    "install_master_signals",
    "program_name",
    "query_control_socket",
    "random_fraction",
    "report_heartbeat",
    "report_ready",
    "request_own_termination",
    "signal_name",
]
