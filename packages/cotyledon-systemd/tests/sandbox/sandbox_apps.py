"""Managers that the sandbox tests run as systemd services.

Each runs under ``python -m cotyledon_testkit._launch sandbox_apps:NAME``
in a unit of the sandbox, and reports to the test's event channel, whose
path the unit's environment gives.
"""

from __future__ import annotations

import os
import socket
import threading

import cotyledon
from cotyledon.types import WorkerId
from cotyledon_testkit import report


class Web(cotyledon.Service):
    """Runs until terminated and reloads in place."""

    name = "web"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        report("reload", service=self.name, worker_id=self.worker_id)


class Gated(Web):
    """Starts only once the test lets it: it waits on the test's socket."""

    name = "gated"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
            gate.connect(os.environ["GATE"])
            gate.recv(1)


class Fetcher(Web):
    """Runs until the test closes the gate socket that ``GATE`` names, then
    fails. Later workers fail at once, because the gate is gone."""

    name = "fetcher"

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gate:
            try:
                gate.connect(os.environ["GATE"])
                # Returns, or raises ECONNRESET, once the test closes the gate.
                gate.recv(1)
            except OSError:
                pass
        raise ConnectionError("the gate is closed")


class TickReporter(cotyledon.LifecycleListener):
    """Reports each liveness tick of the master's loop."""

    def on_liveness_tick(self, status: cotyledon.ManagerStatus) -> None:
        report("tick", summary=status.summary())


def gated_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(Gated, 2)
    manager.run()


def wedge_app() -> None:
    """An on_reload hook that never returns: the master's loop is stuck."""
    manager = cotyledon.ServiceManager(listeners=[TickReporter()])
    manager.add(Web, 2)

    def on_reload() -> None:
        report("wedged")
        threading.Event().wait()

    manager.register_hooks(on_reload=on_reload)
    manager.run()


def reload_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(Web, 2)
    manager.run()


def give_up_continue_app() -> None:
    """fetcher is given up at its second restart within 60 s, and web keeps running."""
    manager = cotyledon.ServiceManager(listeners=[TickReporter()])
    manager.add(Fetcher, 1, max_restarts=(1, 60.0), on_give_up="continue")
    manager.add(Web, 1)
    manager.run()
