"""The base class of the services that workers run."""

from __future__ import annotations

from typing import Any
from typing import ClassVar

from cotyledon.core import WorkerId
from cotyledon.runtime import report_heartbeat
from cotyledon.runtime import report_ready
from cotyledon.runtime import request_own_termination


class Service:
    """A unit of work that runs in each worker process of a service.

    Subclass it and override ``run`` (and ``terminate`` and ``reload`` as
    needed), then add the class to a ``ServiceManager``. Each worker builds
    one instance with its worker id, then calls ``run()`` in a thread of its
    own. On SIGTERM, ``terminate()`` runs in another thread, and the worker
    exits 0 when it returns (``sys.exit(n)`` in it exits n). Any exception in
    these methods is logged with its traceback and the worker exits 1.
    """

    name: ClassVar[str | None] = None
    """The name of the service in process titles and logs; by default, the
    name of the class."""

    graceful_shutdown_timeout: ClassVar[float | None] = None
    """Seconds that ``terminate()`` may take before the master kills the
    worker. None: the manager's timeout; 0: wait forever."""

    announces_readiness: ClassVar[bool] = False
    """True: the worker is ready when the service calls ``notify_ready()``,
    not when ``run()`` starts. The service's ``startup_timeout`` bounds the
    wait."""

    _name_is_default: ClassVar[bool] = True
    """True when ``name`` comes from the class name, so a subclass gets its own."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # A subclass inherits a name set in a class body. A default name
        # belongs to its own class only, so each subclass gets a new one.
        if cls.__dict__.get("name") is not None:
            cls._name_is_default = False
        elif cls.name is None or cls._name_is_default:
            cls.name = cls.__name__
            cls._name_is_default = True

    def __init__(self, worker_id: int) -> None:
        """Create the service of one worker.

        ``worker_id`` runs from 0 to ``workers - 1``; a worker that died is
        replaced by one with the same id, so the id can split work between
        the workers of a service. It is a plain ``int`` here, so that a
        subclass may take it as one.
        """
        super().__init__()
        self.worker_id: WorkerId = WorkerId(worker_id)

    def run(self) -> None:
        """Do the work of the service.

        Runs in a thread of the worker; it may block or return. When it
        returns, the worker waits for a signal. ``sys.exit(n)`` ends the
        worker with status n.
        """

    def terminate(self) -> None:
        """Stop the work gracefully; the worker exits when this returns.

        Runs in the worker's main thread while ``run()`` may still run in
        its own. The master kills the worker if this takes longer than the
        graceful shutdown timeout.
        """

    def reload(self) -> None:
        """Reload the service, on SIGHUP to the master.

        Runs in the worker's main thread, as ``terminate()`` does, so a stop
        requested during a reload runs ``terminate()`` once this returns. By default,
        the worker stops gracefully and the master starts a new one in its
        place.
        """
        request_own_termination()

    def notify_ready(self) -> None:
        """Tell the master that this worker is ready to serve.

        For a service whose ``announces_readiness`` is True; call it from any
        thread once the worker serves (a port bound, a cache warm). Later
        calls, and calls outside a worker, do nothing.
        """
        report_ready()

    def heartbeat(self) -> None:
        """Tell the master that the work loop of this worker is alive.

        For a service added with a ``heartbeat_timeout``: call it from the
        work loop, as often as convenient, because the worker sends at most
        4 per timeout. Without a timeout, it does nothing.
        """
        report_heartbeat()
