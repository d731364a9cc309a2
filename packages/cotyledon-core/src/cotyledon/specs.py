"""The ``ServiceSpec`` of a service, built from the arguments of ``ServiceManager.add``.

``ServiceManager.add`` builds the spec that the supervisor runs with these
functions. Tools that stand in for the manager use them too, so that they
name a service, pick its reload policy and check its supervision policies
exactly as the manager does: cotyledon-testkit's ``Simulator.add`` is one.
The errors are those of ``add``: ``InvalidTypeError`` (a ``TypeError``)
and ``InvalidArgumentError`` (a ``ValueError``), naming the argument, the
service and the value.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterable
from typing import Any

from cotyledon import _validation
from cotyledon._service import Service
from cotyledon.core import GiveUpAction
from cotyledon.core import ReloadPolicy
from cotyledon.core import RestartPolicy
from cotyledon.core import ServiceId
from cotyledon.core import ServiceSpec

__all__ = ["check_seconds", "default_reload_policy", "service_name", "service_spec"]


def check_seconds(value: object, name: str, *, allow_none: bool = False) -> float | None:
    """Return ``value`` as seconds, checked as ``ServiceManager`` checks a
    timeout such as ``graceful_shutdown_timeout``: a real number, finite
    and >= 0, or None when ``allow_none``. ``name`` names it in the error."""
    return _validation.check_seconds(value, name, allow_none=allow_none)


def service_name(service: Callable[..., Any]) -> str:
    """Return the name of a service: its ``name`` attribute if it is a
    non-empty string, else the name of the class or function."""
    name = getattr(service, "name", None)
    if isinstance(name, str) and name:
        return name
    return str(getattr(service, "__name__", type(service).__name__))


def default_reload_policy(service: Callable[..., Any]) -> ReloadPolicy:
    """Return the reload policy of a service added without ``reload=``.

    A ``Service`` subclass that keeps the default ``reload()`` has its
    workers restarted on reload, so that the master enforces their stop
    deadline. Any other service reloads in place.
    """
    if (
        isinstance(service, type)
        and issubclass(service, Service)
        and service.reload is Service.reload
    ):
        return ReloadPolicy.RESTART
    return ReloadPolicy.IN_PLACE


def service_spec(
    service_id: ServiceId,
    name: str,
    workers: int,
    graceful_shutdown_timeout: float | None,
    *,
    default_reload: ReloadPolicy,
    restart: str = "always",
    restart_prevent_exit_status: Iterable[int] = (),
    max_restarts: tuple[int, float] | None = None,
    on_give_up: str = "stop",
    stop_manager_on_exit: bool = False,
    startup_timeout: float | None = None,
    heartbeat_timeout: float | None = None,
    max_age: float | None = None,
    reload: str | None = None,
) -> ServiceSpec:
    """Check the worker count and the supervision policies of a service;
    return its spec.

    The keyword arguments after ``default_reload`` are those of
    ``ServiceManager.add``, with the same defaults and meaning.
    ``default_reload`` is the reload policy when ``reload`` is None (see
    ``default_reload_policy``). ``graceful_shutdown_timeout`` is in seconds,
    None for no limit, and is taken as given.
    """
    _validation.check_workers(workers, name)
    where = f"of service {name!r}"
    restart_policy = RestartPolicy(
        _validation.check_choice(restart, f"restart {where}", [p.value for p in RestartPolicy])
    )
    prevent = _validation.check_exit_statuses(
        restart_prevent_exit_status, f"restart_prevent_exit_status {where}"
    )
    limit = _validation.check_restart_limit(max_restarts, f"max_restarts {where}")
    give_up = GiveUpAction(
        _validation.check_choice(on_give_up, f"on_give_up {where}", [a.value for a in GiveUpAction])
    )
    stop_on_exit = _validation.check_bool(stop_manager_on_exit, f"stop_manager_on_exit {where}")
    startup = _validation.check_positive_seconds(startup_timeout, f"startup_timeout {where}")
    heartbeat = _validation.check_positive_seconds(heartbeat_timeout, f"heartbeat_timeout {where}")
    age = _validation.check_positive_seconds(max_age, f"max_age {where}")
    if reload is None:
        reload_policy = default_reload
    else:
        reload_policy = ReloadPolicy(
            _validation.check_choice(reload, f"reload {where}", [p.value for p in ReloadPolicy])
        )
    return ServiceSpec(
        service_id=service_id,
        name=name,
        workers=workers,
        graceful_shutdown_timeout=graceful_shutdown_timeout,
        reload_policy=reload_policy,
        restart=restart_policy,
        restart_prevent_exit_statuses=prevent,
        max_restarts=limit,
        on_give_up=give_up,
        stop_manager_on_exit=stop_on_exit,
        startup_timeout=startup,
        heartbeat_timeout=heartbeat,
        max_age=age,
    )
