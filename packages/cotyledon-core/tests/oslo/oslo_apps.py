"""Applications that the oslo.config glue tests start in a fresh interpreter.

Each function parses the configuration file named by ``OSLO_APPS_CONFIG``,
links a manager to it with ``oslo_config_glue.setup`` and runs the manager.
Services and hooks report the values they see through
``cotyledon_testkit.report``.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import threading

from oslo_config import cfg
from oslo_support import CONFIG_ENV

import cotyledon
from cotyledon import oslo_config_glue
from cotyledon.oslo_config_glue import ReloadMethod
from cotyledon.types import ServiceId
from cotyledon.types import WorkerId
from cotyledon_testkit import report

app_opts = [cfg.StrOpt("greeting", default="unset", mutable=True)]


class Greeter(cotyledon.Service):
    """Runs until terminated and reloads in place, reporting the values it reads."""

    name = "greeter"

    def __init__(self, worker_id: WorkerId, conf: cfg.ConfigOpts) -> None:
        super().__init__(worker_id)
        self.conf = conf
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id, greeting=self.conf.greeting)
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()

    def reload(self) -> None:
        report("reload", service=self.name, worker_id=self.worker_id, greeting=self.conf.greeting)


class RestartingGreeter(Greeter):
    """Keeps the default reload(): the master replaces its worker on reload."""

    name = "restarting-greeter"
    reload = cotyledon.Service.reload


class Stuck(Greeter):
    """Never returns from terminate(), and has no shutdown timeout of its own."""

    name = "stuck"

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        threading.Event().wait()


def _run(
    services: list[tuple[type[Greeter], int]],
    reload_method: ReloadMethod = "reload",
    mp_context: multiprocessing.context.BaseContext | None = None,
) -> None:
    conf = cfg.ConfigOpts()
    conf.register_opts(app_opts)
    conf(args=["--config-file", os.environ[CONFIG_ENV]], default_config_dirs=[])
    manager = cotyledon.ServiceManager(mp_context=mp_context)
    oslo_config_glue.setup(manager, conf, reload_method=reload_method)
    names = {
        manager.add(service, workers, args=(conf,)): service.name for service, workers in services
    }

    def on_reload() -> None:
        report(
            "hook_reload",
            greeting=conf.greeting,
            timeout=manager._graceful_shutdown_timeout,
        )

    def on_dead_worker(service_id: ServiceId, worker_id: WorkerId, exit_code: int) -> None:
        report("hook_dead_worker", service=names[service_id], worker_id=worker_id, code=exit_code)

    # Registered after setup(), so these hooks run after the glue's.
    manager.register_hooks(on_reload=on_reload, on_dead_worker=on_dead_worker)
    report("configured", greeting=conf.greeting, timeout=manager._graceful_shutdown_timeout)
    manager.run()


def reload_app() -> None:
    _run([(Greeter, 2), (RestartingGreeter, 1)], "reload")


def mutate_app() -> None:
    _run([(Greeter, 2), (RestartingGreeter, 1)], "mutate")


def stuck_app() -> None:
    _run([(Stuck, 1)])


def spawn_app() -> None:
    _run([(Greeter, 1)], mp_context=multiprocessing.get_context("spawn"))
