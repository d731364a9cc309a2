"""Applications that the supervision policy tests start in a fresh interpreter.

Each function builds a manager with one policy and runs it. Services report
what happens to the test through ``cotyledon_testkit.report``; the manager's
lifecycle comes through the testkit's listener.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import cotyledon
from cotyledon.types import WorkerId
from cotyledon_testkit import report


class Probe(cotyledon.Service):
    """Runs until terminated."""

    name = "probe"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        self._stop.wait()

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        self._stop.set()

    def reload(self) -> None:
        """Reloads in place."""


class ExitWith(cotyledon.Service):
    """Leaves run() at once with the exit status it is given."""

    name = "exit-with"

    def __init__(self, worker_id: WorkerId, status: int) -> None:
        super().__init__(worker_id)
        self.status = status

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id, status=self.status)
        sys.exit(self.status)


class Crasher(cotyledon.Service):
    """Raises from run() at once."""

    name = "crasher"

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        raise RuntimeError("crasher always fails")


class LateReady(cotyledon.Service):
    """Announces its readiness itself, 0.3 s after run() starts."""

    name = "late-ready"
    announces_readiness = True

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        if not self._stop.wait(0.3):
            report("notify_ready", service=self.name, worker_id=self.worker_id)
            self.notify_ready()
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()


class NeverReady(cotyledon.Service):
    """Announces its readiness itself, and never does."""

    name = "never-ready"
    announces_readiness = True

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        self._stop.wait()

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        self._stop.set()


class Beater(cotyledon.Service):
    """Sends heartbeats from a tight loop for 0.5 s, then hangs."""

    name = "beater"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        until = time.monotonic() + 0.5
        while time.monotonic() < until:
            self.heartbeat()
        report("hang", service=self.name, worker_id=self.worker_id)
        self._stop.wait()

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        self._stop.set()


def restart_policy_app() -> None:
    """exit-with(0) under on-failure and exit-with(3) with 3 preventing
    restarts both finish; the probe keeps the manager running."""
    manager = cotyledon.ServiceManager()
    manager.add(ExitWith, 1, args=(0,), restart="on-failure")
    manager.add(ExitWith, 1, args=(3,), restart_prevent_exit_status=(3,))
    manager.add(Probe, 1)
    manager.run()


def finished_app() -> None:
    """A single service that never restarts: the manager stops when it ends."""
    manager = cotyledon.ServiceManager()
    manager.add(ExitWith, 2, args=(0,), restart="never")
    manager.run()


def give_up_app() -> None:
    """The crasher is given up after 2 restarts; the manager stops."""
    manager = cotyledon.ServiceManager()
    manager.add(Crasher, 1, max_restarts=(2, 60.0))
    manager.add(Probe, 1)
    manager.run()


def give_up_continue_app() -> None:
    """The crasher is given up at once; the probe keeps running."""
    manager = cotyledon.ServiceManager()
    manager.add(Crasher, 1, max_restarts=(0, 60.0), on_give_up="continue")
    manager.add(Probe, 1)
    manager.run()


def stop_on_exit_app() -> None:
    """exit-with(4) ends: the manager stops and exits 4."""
    manager = cotyledon.ServiceManager()
    manager.add(Probe, 1)
    manager.add(ExitWith, 1, args=(4,), stop_manager_on_exit=True)
    manager.run()


def readiness_app() -> None:
    """late-ready is ready once it calls notify_ready(). never-ready is
    stopped after 0.5 s, killed 0.5 s later, and restarted."""
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=0.5)
    manager.add(LateReady, 1, startup_timeout=10.0)
    manager.add(NeverReady, 1, startup_timeout=0.5)
    manager.run()


def heartbeat_app() -> None:
    """beater hangs after 0.5 s of heartbeats: stopped as hung, restarted."""
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=5)
    manager.add(Beater, 1, heartbeat_timeout=0.4)
    manager.run()


def max_age_app() -> None:
    """Each probe worker is replaced after about 0.5 s."""
    manager = cotyledon.ServiceManager()
    manager.add(Probe, 1, max_age=0.5)
    manager.run()


class Rolling(cotyledon.Service):
    """Ready 0.2 s after run() starts; reloads by replacement."""

    name = "rolling"
    announces_readiness = True

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        if not self._stop.wait(0.2):
            self.notify_ready()
        self._stop.wait()

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        self._stop.set()


class ReadyOnce(Rolling):
    """Only the first worker ever started gets ready: it leaves the file
    named by ``READY_ONCE`` behind, and a worker that finds it never is."""

    name = "ready-once"

    def run(self) -> None:
        marker = Path(os.environ["READY_ONCE"])
        report("run", service=self.name, worker_id=self.worker_id)
        if not marker.exists():
            marker.touch()
            self.notify_ready()
        self._stop.wait()


def rolling_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(Rolling, 2, reload="rolling", startup_timeout=10.0)
    manager.run()


def rolling_failure_app() -> None:
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=1)
    manager.add(ReadyOnce, 1, reload="rolling", startup_timeout=0.5)
    manager.run()


def operator_app() -> None:
    """Two probes, a control socket at ``CONTROL_SOCKET``, and a thread that
    reports the manager's status once it is ready."""
    manager = cotyledon.ServiceManager(control_socket=os.environ["CONTROL_SOCKET"])
    manager.add(Probe, 2)

    def watch() -> None:
        while not manager.status().ready:
            time.sleep(0.01)
        report("status_seen", summary=manager.status().summary())

    report("status_before_run", summary=manager.status().summary())
    threading.Thread(target=watch, daemon=True).start()
    manager.run()


def status_churn_app() -> None:
    """Probes whose number changes all the time, and a thread that reads the
    manager's status meanwhile; reports what the reader saw, then stops."""
    # Switch threads often, so that a read that is not guarded against the
    # master's changes would overlap one.
    sys.setswitchinterval(1e-6)
    manager = cotyledon.ServiceManager()
    service_id = manager.add(Probe, 1)
    failures: list[str] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        deadline = time.monotonic() + 1.5
        workers = 1
        while time.monotonic() < deadline:
            workers = 24 if workers == 1 else 1
            manager.reconfigure(service_id, workers)
            for _ in range(20):
                try:
                    manager.status().summary()
                except Exception as exc:
                    failures.append(f"{type(exc).__name__}: {exc}")
                reads += 1
        report("read", reads=reads, failures=failures)
        manager.shutdown()

    threading.Thread(target=read, daemon=True).start()
    manager.run()


class SteadyBeater(cotyledon.Service):
    """Sends heartbeats from a tight loop until terminated; reloads in place."""

    name = "steady"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        while not self._stop.wait(0.01):
            self.heartbeat()

    def reload(self) -> None:
        report("reload", service=self.name, worker_id=self.worker_id)

    def terminate(self) -> None:
        self._stop.set()


def stalling_master_app() -> None:
    """Four steady beaters under a 1 s heartbeat timeout, and an on_reload
    hook that takes ``HOOK_SECONDS`` seconds."""
    hook_seconds = float(os.environ.get("HOOK_SECONDS", "0"))

    def slow_hook() -> None:
        time.sleep(hook_seconds)

    manager = cotyledon.ServiceManager()
    manager.add(SteadyBeater, 4, heartbeat_timeout=1.0)
    manager.register_hooks(on_reload=slow_hook)
    manager.run()
