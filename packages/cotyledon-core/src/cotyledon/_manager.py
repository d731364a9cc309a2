"""The manager: the master process that supervises the workers."""

from __future__ import annotations

import logging
import multiprocessing.context
import os
import threading
import uuid
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import ClassVar
from typing import NoReturn

from cotyledon import _validation
from cotyledon._discovery import discover_listeners
from cotyledon._errors import InvalidArgumentError
from cotyledon._errors import InvalidTypeError
from cotyledon._service import Service
from cotyledon.core import ManagerStatus
from cotyledon.core import ServiceAdded
from cotyledon.core import ServiceId
from cotyledon.core import ServiceSpec
from cotyledon.core import ShutdownTimeoutChanged
from cotyledon.core import Slot
from cotyledon.core import StopMode
from cotyledon.core import StopRequested
from cotyledon.core import Supervisor
from cotyledon.core import WorkersChanged
from cotyledon.core import evolve
from cotyledon.core import record
from cotyledon.runtime import Hooks
from cotyledon.runtime import LifecycleListener
from cotyledon.runtime import MasterLoop
from cotyledon.runtime import MonotonicClock
from cotyledon.runtime import OnDeadWorkerHook
from cotyledon.runtime import OnNewWorkerHook
from cotyledon.runtime import OnReloadHook
from cotyledon.runtime import OnTerminateHook
from cotyledon.runtime import RequestQueue
from cotyledon.runtime import SignalWakeup
from cotyledon.runtime import WorkerRecipe
from cotyledon.runtime import default_context
from cotyledon.runtime import install_master_signals
from cotyledon.runtime import program_name
from cotyledon.runtime import random_fraction
from cotyledon.specs import default_reload_policy
from cotyledon.specs import service_name
from cotyledon.specs import service_spec

LOG = logging.getLogger(__name__)


@record(frozen=False)
class _ServiceEntry:
    spec: ServiceSpec
    factory: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    own_timeout: float | None
    """The service's own graceful_shutdown_timeout; None: the manager's."""


class ServiceManager:
    """The master process: starts the workers of each service and keeps them
    running.

    Add services with ``add``, register hooks with ``register_hooks``, then
    call ``run``, which supervises the workers until the master is asked to
    stop: SIGTERM (or ``shutdown()``) stops every worker gracefully and exits
    0; SIGINT stops them at once and exits 1; SIGHUP reloads them. A worker
    that dies is restarted with the same worker id, at once the first time
    and with a growing delay if its slot keeps dying.

    Only one manager may exist per process.
    """

    _process_runner_already_created: ClassVar[bool] = False

    def __init__(
        self,
        wait_interval: float = 0.01,
        graceful_shutdown_timeout: float = 60,
        mp_context: multiprocessing.context.BaseContext | None = None,
        *,
        listeners: Sequence[LifecycleListener] = (),
        discover_listeners: bool = True,
        control_socket: str | os.PathLike[str] | None = None,
    ) -> None:
        """Create the manager.

        ``graceful_shutdown_timeout`` is the number of seconds a worker may
        take to stop before the master kills it (0: wait forever); a service
        can set its own. ``mp_context`` is the multiprocessing context whose
        start method starts the workers. It is fork by default on POSIX, and
        the master then forks each worker itself. With spawn or forkserver,
        multiprocessing starts them, so services, their arguments and
        ``on_new_worker`` hooks must be picklable. ``wait_interval`` is accepted for compatibility
        with cotyledon 2.x and has no effect: workers start without a pause,
        and restarts of a failing worker are paced by backoff.

        ``listeners`` are called as the manager's lifecycle goes on (see
        ``LifecycleListener``). With ``discover_listeners``, ``run()`` also
        adds the listeners that installed distributions declare under the
        ``cotyledon.listeners`` entry point group (cotyledon-systemd does).

        ``control_socket`` is the path of a Unix socket (mode 0600) that
        the master serves while it runs: it answers ``status``, ``ready``
        and ``live`` requests with JSON, as ``python -m cotyledon status
        PATH`` shows. A socket left at that path by an earlier run is
        replaced.
        """
        _validation.check_seconds(wait_interval, "wait_interval")
        timeout = _validation.check_seconds(graceful_shutdown_timeout, "graceful_shutdown_timeout")
        assert timeout is not None
        if mp_context is not None and not isinstance(
            mp_context, multiprocessing.context.BaseContext
        ):
            raise InvalidTypeError(
                "mp_context must be a multiprocessing context such as "
                f"multiprocessing.get_context('spawn'), got {mp_context!r}"
            )
        for listener in listeners:
            _check_listener(listener)
        if ServiceManager._process_runner_already_created:
            raise RuntimeError(
                "Only one instance of ServiceManager per application is allowed: "
                "a ServiceManager already exists in this process"
            )
        ServiceManager._process_runner_already_created = True

        self.mp_context: multiprocessing.context.BaseContext = mp_context or default_context()
        self._lock = threading.RLock()
        self._timeout = timeout
        self._entries: dict[ServiceId, _ServiceEntry] = {}
        self._hooks = Hooks()
        self._requests = RequestQueue()
        self._running = False
        self._listeners: list[LifecycleListener] = list(listeners)
        self._discover_listeners = discover_listeners
        if control_socket is not None and not isinstance(control_socket, (str, os.PathLike)):
            raise InvalidTypeError(
                f"control_socket must be a path or None, got {control_socket!r} "
                f"({type(control_socket).__name__})"
            )
        self._control_socket = None if control_socket is None else os.fspath(control_socket)
        self._loop: MasterLoop | None = None
        """The loop of the latest run(), which builds the snapshots of status()."""
        # As in cotyledon 2.x, the master's signals are caught from here on,
        # so that a SIGTERM that comes before run() stops the manager
        # cleanly once it runs. Only the main thread can set handlers.
        self._signals: SignalWakeup | None = None
        if threading.current_thread() is threading.main_thread():
            self._signals = install_master_signals()

    def __repr__(self) -> str:
        with self._lock:
            services = ", ".join(
                f"{entry.spec.name}*{entry.spec.workers}" for entry in self._entries.values()
            )
            state = "running" if self._running else "idle"
        return (
            f"<ServiceManager {state} start_method={self.mp_context.get_start_method()} "
            f"services=[{services}]>"
        )

    def add(
        self,
        service: Callable[..., Service],
        workers: int = 1,
        args: Sequence[Any] | None = None,
        kwargs: Mapping[str, Any] | None = None,
        *,
        graceful_shutdown_timeout: float | None = None,
        restart: str = "always",
        restart_prevent_exit_status: Iterable[int] = (),
        max_restarts: tuple[int, float] | None = None,
        on_give_up: str = "stop",
        stop_manager_on_exit: bool = False,
        startup_timeout: float | None = None,
        heartbeat_timeout: float | None = None,
        max_age: float | None = None,
        reload: str | None = None,
    ) -> ServiceId:
        """Add a service with ``workers`` worker processes; return its id.

        ``service`` is a ``Service`` subclass, or any callable that returns a
        ``Service``; each worker calls it as
        ``service(worker_id, *args, **kwargs)``. Services added while the
        manager runs start at once.

        ``graceful_shutdown_timeout`` is the seconds that a worker of this
        service may take to stop (0: no limit). None takes the service's
        ``graceful_shutdown_timeout`` attribute if it has one, and the
        manager's otherwise.

        The other keyword-only arguments are supervision policies; their
        defaults keep the behaviour of cotyledon 2.x.

        - ``restart``: which exits of a worker, not asked to stop, get a
          replacement: ``"always"``, ``"on-failure"`` (a status other than
          0, or a signal) or ``"never"``. ``restart_prevent_exit_status``
          lists exit statuses that are never restarted, as systemd's
          ``RestartPreventExitStatus=``. A slot not restarted is finished;
          a service whose slots are all finished is reported as finished,
          and the manager stops (status 0) once no service is left running.
        - ``max_restarts=(R, T)``: at most R restarts within T seconds; past
          it the service is given up, the ``on_give_up`` listeners are
          called, and ``on_give_up`` decides what follows: ``"stop"`` stops the
          manager gracefully with exit status 70 (``GIVE_UP_EXIT_STATUS``),
          ``"continue"`` stops the service's workers only.
        - ``stop_manager_on_exit``: when a worker of this service ends
          without being asked to, the manager stops gracefully and exits
          with that worker's exit status (128 + N when signal N killed it).
        - ``startup_timeout``: seconds a new worker has to be ready (see
          ``Service.announces_readiness``); one late is stopped, killed at
          its graceful shutdown deadline, and restarted as after a failure.
        - ``heartbeat_timeout``: seconds a ready worker may go without
          calling ``Service.heartbeat()``; one silent longer is stopped as
          hung, killed at its deadline, and restarted.
        - ``reload``: what a reload (SIGHUP) does to the workers:
          ``"in-place"`` calls ``reload()`` in each; ``"restart"`` stops
          each gracefully and starts a new one; ``"rolling"`` starts a
          replacement for one worker, waits until it is ready (within
          ``startup_timeout``, 60 s without one), stops the old worker, and
          goes on to the next; a replacement not ready in time is stopped,
          the workers not yet replaced keep running, and the reload is
          reported as failed. None: ``"restart"`` for a ``Service`` that
          keeps the default ``reload()``, ``"in-place"`` otherwise.
        - ``max_age``: seconds after which a worker is stopped gracefully
          and replaced at once, less up to 10 % at random so that workers
          started together are not replaced together.
        """
        if not callable(service):
            raise InvalidTypeError(
                "service must be a Service subclass or a callable that returns a "
                f"Service, got {service!r} ({type(service).__name__})"
            )
        name = service_name(service)
        _validation.check_workers(workers, name)
        if graceful_shutdown_timeout is None:
            graceful_shutdown_timeout = getattr(service, "graceful_shutdown_timeout", None)
        service_timeout = _validation.check_seconds(
            graceful_shutdown_timeout,
            f"graceful_shutdown_timeout of service {name!r}",
            allow_none=True,
        )
        if args is None:
            args = ()
        if not isinstance(args, (tuple, list)):
            raise InvalidTypeError(
                f"args must be a tuple or a list for service {name!r}, "
                f"got {args!r} ({type(args).__name__})"
            )
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, Mapping):
            raise InvalidTypeError(
                f"kwargs must be a mapping for service {name!r}, "
                f"got {kwargs!r} ({type(kwargs).__name__})"
            )

        with self._lock:
            spec = service_spec(
                ServiceId(uuid.uuid4()),
                name,
                workers,
                self._effective_timeout(service_timeout),
                default_reload=default_reload_policy(service),
                restart=restart,
                restart_prevent_exit_status=restart_prevent_exit_status,
                max_restarts=max_restarts,
                on_give_up=on_give_up,
                stop_manager_on_exit=stop_manager_on_exit,
                startup_timeout=startup_timeout,
                heartbeat_timeout=heartbeat_timeout,
                max_age=max_age,
                reload=reload,
            )
            entry = _ServiceEntry(spec, service, tuple(args), dict(kwargs), service_timeout)
            self._entries[spec.service_id] = entry
            if self._running:
                self._requests.put(ServiceAdded(spec))
        return spec.service_id

    @property
    def _graceful_shutdown_timeout(self) -> float:
        """The manager's graceful shutdown timeout, in seconds (0: forever).

        Private in name, as in cotyledon 2.x, where the oslo.config glue sets
        it on each reload. Setting it applies to the services without a
        timeout of their own, for the stops that start afterwards.
        """
        return self._timeout

    @_graceful_shutdown_timeout.setter
    def _graceful_shutdown_timeout(self, value: float) -> None:
        timeout = _validation.check_seconds(value, "graceful_shutdown_timeout")
        assert timeout is not None
        with self._lock:
            self._timeout = timeout
            for entry in self._entries.values():
                if entry.own_timeout is not None:
                    continue
                effective = self._effective_timeout(None)
                entry.spec = evolve(entry.spec, graceful_shutdown_timeout=effective)
                if self._running:
                    self._requests.put(ShutdownTimeoutChanged(entry.spec.service_id, effective))

    def _effective_timeout(self, own_timeout: float | None) -> float | None:
        timeout = self._timeout if own_timeout is None else own_timeout
        # 0 means that a stopping worker may take as long as it needs.
        return timeout or None

    def reconfigure(self, service_id: ServiceId, workers: int) -> None:
        """Change the number of workers of a service.

        More workers start the missing worker ids; fewer stop the highest
        ids gracefully. Safe to call from any thread and from hooks.
        """
        with self._lock:
            entry = self._entries.get(service_id)
            if entry is None:
                raise InvalidArgumentError(
                    f"unknown service id {service_id!r}: reconfigure() takes an id "
                    "returned by add() on this manager"
                )
            _validation.check_workers(workers, entry.spec.name)
            entry.spec = evolve(entry.spec, workers=workers)
            if self._running:
                self._requests.put(WorkersChanged(service_id, workers))

    def add_listener(self, listener: LifecycleListener) -> None:
        """Add a lifecycle listener; it takes effect at the next ``run()``."""
        _check_listener(listener)
        with self._lock:
            self._listeners.append(listener)

    def register_hooks(
        self,
        on_terminate: OnTerminateHook | None = None,
        on_reload: OnReloadHook | None = None,
        on_new_worker: OnNewWorkerHook | None = None,
        on_dead_worker: OnDeadWorkerHook | None = None,
    ) -> None:
        """Register hooks; each call adds to those already registered.

        - ``on_terminate()``: in the master, on SIGTERM, before the workers
          are asked to stop.
        - ``on_reload()``: in the master, on SIGHUP, before the workers
          reload.
        - ``on_new_worker(service_id, worker_id, service)``: in each new
          worker, once its service is built.
        - ``on_dead_worker(service_id, worker_id, exit_code)``: in the
          master, when a worker has ended (a negative code is minus the
          signal that killed it), except the workers that the manager
          stops when it shuts down.

        Hooks run in the order they were registered. A hook that raises is
        logged and the next hooks still run.
        """
        hooks: list[tuple[str, Callable[..., None] | None, list[Any]]] = [
            ("on_terminate", on_terminate, self._hooks.on_terminate),
            ("on_reload", on_reload, self._hooks.on_reload),
            ("on_new_worker", on_new_worker, self._hooks.on_new_worker),
            ("on_dead_worker", on_dead_worker, self._hooks.on_dead_worker),
        ]
        for name, hook, _ in hooks:
            if hook is not None:
                _validation.check_callable(hook, name)
        with self._lock:
            for _, hook, registered in hooks:
                if hook is not None:
                    registered.append(hook)

    def run(self) -> NoReturn:
        """Start the workers and supervise them until the manager stops.

        Must be called from the main thread. Ends by raising ``SystemExit``
        with the master's exit status: 0 after SIGTERM or ``shutdown()``, 1
        after SIGINT.
        """
        with self._lock:
            if self._running:
                raise RuntimeError("ServiceManager.run() is already running")
            self._check_picklable()
            specs = [entry.spec for entry in self._entries.values()]
            listeners = list(self._listeners)
            self._running = True
        if self._discover_listeners:
            listeners.extend(discover_listeners())
        program = program_name()
        loop = MasterLoop(
            supervisor=Supervisor(specs, random=random_fraction),
            context=self.mp_context,
            hooks=self._hooks,
            requests=self._requests,
            clock=MonotonicClock(),
            recipe_for=self._recipe_for,
            program_name=program,
            signals=self._signals,
            listeners=listeners,
            control_socket=self._control_socket,
        )
        with self._lock:
            self._loop = loop
        try:
            status = loop.run()
        finally:
            with self._lock:
                self._running = False
                self._signals = None
        raise SystemExit(status)

    def status(self) -> ManagerStatus:
        """Return a snapshot of the manager and its workers as of now.

        Safe to call from any thread and from hooks. After ``run()`` has
        ended, it describes the manager as it ended. Before ``run()``, the
        services are listed with no worker.
        """
        with self._lock:
            loop = self._loop
            if loop is None:
                specs = [entry.spec for entry in self._entries.values()]
        if loop is not None:
            return loop.status()
        return Supervisor(specs, random=lambda: 0.0).status(0.0)

    def shutdown(self) -> None:
        """Stop every worker gracefully, then end ``run()`` with status 0.

        Returns at once; safe to call from any thread and from hooks. Called
        before ``run()``, it makes ``run()`` stop as soon as it starts.
        """
        LOG.info("Manager shutdown requested")
        self._requests.put(StopRequested(StopMode.GRACEFUL))

    def _recipe_for(self, slot: Slot) -> WorkerRecipe:
        with self._lock:
            entry = self._entries[slot.service_id]
            hooks = tuple(self._hooks.on_new_worker)
        return WorkerRecipe(
            service_id=slot.service_id,
            worker_id=slot.worker_id,
            service_name=entry.spec.name,
            factory=entry.factory,
            args=entry.args,
            kwargs=entry.kwargs,
            new_worker_hooks=hooks,
            graceful_shutdown_timeout=entry.spec.graceful_shutdown_timeout,
            announces_readiness=bool(getattr(entry.factory, "announces_readiness", False)),
            heartbeat_timeout=entry.spec.heartbeat_timeout,
        )

    def _check_picklable(self) -> None:
        method = self.mp_context.get_start_method()
        if method == "fork":
            return
        for entry in self._entries.values():
            name = entry.spec.name
            _validation.check_picklable(entry.factory, f"service {name!r}", method)
            _validation.check_picklable(entry.args, f"args of service {name!r}", method)
            _validation.check_picklable(entry.kwargs, f"kwargs of service {name!r}", method)
        for hook in self._hooks.on_new_worker:
            _validation.check_picklable(hook, f"on_new_worker hook {hook!r}", method)


def _check_listener(listener: object) -> None:
    if not isinstance(listener, LifecycleListener):
        raise InvalidTypeError(
            "a listener must be an instance of a cotyledon.LifecycleListener subclass, "
            f"got {listener!r} ({type(listener).__name__})"
        )
