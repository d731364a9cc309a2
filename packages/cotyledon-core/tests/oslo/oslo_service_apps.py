"""oslo.service programs on the threading backend, started by
test_oslo_service_launch.py in a fresh interpreter.

They use oslo.service as its users do: select the threading backend, parse
the configuration, ``service.launch(conf, service, workers=N)``, then
``launcher.wait()``. The services report what they see through
``cotyledon_testkit.report``.
"""

from __future__ import annotations

import os
import sys
import threading

from oslo_config import cfg
from oslo_service import backend

backend.init_backend(backend.BackendType.THREADING)

# After init_backend: oslo_service.service binds the selected backend's
# classes when it is imported.
from oslo_service import service  # noqa: E402

from cotyledon_testkit import report  # noqa: E402

CONFIG_ENV = "OSLO_SERVICE_APPS_CONFIG"


class Echo(service.ServiceBase):  # type: ignore[misc]  # oslo.service has no type hints
    """Reports its start and stop. stop() never returns while the
    configuration sets greeting = hang."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__()
        self.conf = conf
        self._stopped = threading.Event()

    def start(self) -> None:
        report("start", greeting=self.conf.greeting, timeout=self.conf.graceful_shutdown_timeout)

    def wait(self) -> None:
        self._stopped.wait()

    def stop(self, graceful: bool = False) -> None:
        report("stop", greeting=self.conf.greeting)
        if self.conf.greeting == "hang":
            threading.Event().wait()
        self._stopped.set()

    def reset(self) -> None:
        pass


def _launch(workers: int) -> None:
    conf = cfg.ConfigOpts()
    conf.register_opts([cfg.StrOpt("greeting", default="unset")])
    conf(args=["--config-file", os.environ[CONFIG_ENV]], default_config_dirs=[])
    launcher = service.launch(conf, Echo(conf), workers=workers)
    report("launched", launcher=type(launcher).__name__)
    # ProcessLauncher.wait() ends with the manager's SystemExit;
    # ServiceLauncher.wait() returns the exit status instead.
    sys.exit(launcher.wait())


def two_workers_app() -> None:
    _launch(2)


def one_worker_app() -> None:
    _launch(1)
