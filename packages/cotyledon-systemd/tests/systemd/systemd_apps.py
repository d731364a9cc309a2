"""Managers that the systemd tests start in a fresh interpreter.

Each function builds a manager and runs it; the systemd listener comes in
through the ``cotyledon.listeners`` entry point, as in a real deployment.
Services report to the test through ``cotyledon_testkit.report``.
"""

from __future__ import annotations

import multiprocessing
import os
import select
import socket
import threading
from pathlib import Path

import cotyledon
import cotyledon_systemd
from cotyledon.types import WorkerId
from cotyledon_testkit import report

SYSTEMD_VARIABLES = cotyledon_systemd.SYSTEMD_VARIABLES


def _systemd_environment() -> dict[str, str | None]:
    return {name: os.environ.get(name) for name in SYSTEMD_VARIABLES}


class Web(cotyledon.Service):
    """Runs until terminated, reloads in place, reports its environment."""

    name = "web"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id, env=_systemd_environment())
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        report("reload", service=self.name, worker_id=self.worker_id)


class Mail(Web):
    """Keeps the default reload(): its worker is replaced on reload."""

    name = "mail"
    reload = cotyledon.Service.reload


class SlowStop(Web):
    """terminate() never returns: the master kills it at its deadline."""

    name = "slow"
    graceful_shutdown_timeout = 2

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        threading.Event().wait()


class CrashOnFlag(Web):
    """Fails at once in run() while the file ``CRASH_FLAG`` names exists."""

    name = "web"

    def run(self) -> None:
        if Path(os.environ["CRASH_FLAG"]).exists():
            raise RuntimeError("crash flag is set")
        super().run()


class Echo(cotyledon.Service):
    """Sends its worker id and pid to each connection accepted on the
    socket passed as ``web``."""

    name = "echo"

    def run(self) -> None:
        listener = cotyledon_systemd.listen_sockets()["web"][0]
        report("run", service=self.name, worker_id=self.worker_id, env=_systemd_environment())
        while True:
            # The listening socket is shared with the other workers: one of
            # them may take the connection first.
            select.select([listener], [], [])
            try:
                connection, _ = listener.accept()
            except BlockingIOError:
                continue
            with connection:
                connection.sendall(f"{self.worker_id} {os.getpid()}\n".encode())


def notify_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(Web, 2)
    manager.add(Mail, 1)
    manager.run()


def _start_method_app(method: str) -> None:
    manager = cotyledon.ServiceManager(mp_context=multiprocessing.get_context(method))
    manager.add(Web, 2)
    manager.run()


def spawn_app() -> None:
    _start_method_app("spawn")


def forkserver_app() -> None:
    _start_method_app("forkserver")


def fork_app() -> None:
    _start_method_app("fork")


def slow_stop_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(SlowStop, 1)
    manager.run()


def crash_on_flag_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(CrashOnFlag, 1)
    manager.add(Mail, 1)
    manager.run()


def _give_up_app(on_give_up: str) -> None:
    """Run a manager whose web service is given up at its second restart
    within 60 s. Once ``CRASH_FLAG`` exists, a kill of web's worker makes
    the next one fail at once."""
    manager = cotyledon.ServiceManager()
    manager.add(CrashOnFlag, 1, max_restarts=(1, 60.0), on_give_up=on_give_up)
    manager.add(Mail, 1)
    manager.run()


def give_up_stop_app() -> None:
    _give_up_app("stop")


def give_up_continue_app() -> None:
    _give_up_app("continue")


def no_discovery_app() -> None:
    manager = cotyledon.ServiceManager(discover_listeners=False)
    manager.add(Web, 1)
    manager.run()


def explicit_listener_app() -> None:
    """The listener passed by hand; discovery stays on and adds no second one."""
    manager = cotyledon.ServiceManager(listeners=[cotyledon_systemd.SystemdListener()])
    manager.add(Web, 1)
    manager.run()


def socket_app() -> None:
    """Two workers accept on the socket that systemd-socket-activate passed."""
    sockets = cotyledon_systemd.listen_sockets()
    report(
        "master_sockets",
        names={name: len(found) for name, found in sockets.items()},
        family=[s.family == socket.AF_INET for s in sockets.get("web", [])],
        env=_systemd_environment(),
    )
    manager = cotyledon.ServiceManager()
    manager.add(Echo, 2)
    manager.run()
