"""Bad input through the public API: errors that name the argument and value."""

from __future__ import annotations

import multiprocessing
import re
import threading
import uuid
from typing import Any

import pytest

import cotyledon
from cotyledon.types import ServiceId
from cotyledon.types import WorkerId


class Simple(cotyledon.Service):
    name = "simple"


class NegativeTimeout(cotyledon.Service):
    graceful_shutdown_timeout = -1


@pytest.mark.parametrize("workers", [0, -1])
def test_add_rejects_workers_below_one(workers: int) -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(
        ValueError, match=rf"workers must be an int >= 1 for service 'simple', got {workers}"
    ):
        manager.add(Simple, workers)


@pytest.mark.parametrize("workers", ["2", 1.5, True, None])
def test_add_rejects_workers_of_wrong_type(workers: Any) -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(TypeError, match=r"workers must be an int >= 1 for service 'simple'"):
        manager.add(Simple, workers)


def test_workers_of_wrong_type_raise_value_error_too() -> None:
    # Programs written for cotyledon 2.x catch the ValueError that it raised.
    manager = cotyledon.ServiceManager()

    with pytest.raises(ValueError, match=r"workers must be an int >= 1 for service 'simple'"):
        manager.add(Simple, "2")  # type: ignore[arg-type]


def test_add_rejects_non_callable_service() -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(
        TypeError, match=r"service must be a Service subclass or a callable.*got 42"
    ):
        manager.add(42)  # type: ignore[arg-type]


def test_add_rejects_string_args() -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(TypeError, match=r"args must be a tuple or a list for service 'simple'"):
        manager.add(Simple, 1, args="abc")


def test_add_rejects_non_mapping_kwargs() -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(TypeError, match=r"kwargs must be a mapping for service 'simple'"):
        manager.add(Simple, 1, kwargs=[("a", 1)])  # type: ignore[arg-type]


def test_add_rejects_negative_service_timeout() -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(ValueError, match=r"graceful_shutdown_timeout of service 'NegativeTimeout'"):
        manager.add(NegativeTimeout)


def test_add_accepts_factory_function() -> None:
    manager = cotyledon.ServiceManager()

    def build(worker_id: WorkerId) -> cotyledon.Service:
        return Simple(worker_id)

    service_id = manager.add(build, 2)

    assert isinstance(service_id, uuid.UUID)


def test_reconfigure_rejects_unknown_service() -> None:
    manager = cotyledon.ServiceManager()
    unknown = ServiceId(uuid.uuid4())

    with pytest.raises(ValueError, match=re.escape(f"unknown service id {unknown!r}")):
        manager.reconfigure(unknown, 2)


@pytest.mark.parametrize("workers", [0, "3"])
def test_reconfigure_rejects_bad_workers(workers: Any) -> None:
    manager = cotyledon.ServiceManager()
    service_id = manager.add(Simple)

    with pytest.raises((ValueError, TypeError), match=r"workers must be an int >= 1"):
        manager.reconfigure(service_id, workers)


@pytest.mark.parametrize("hook", ["on_terminate", "on_reload", "on_new_worker", "on_dead_worker"])
def test_register_hooks_rejects_non_callable(hook: str) -> None:
    manager = cotyledon.ServiceManager()
    hooks: dict[str, Any] = {hook: "nope"}

    with pytest.raises(TypeError, match=rf"{hook} must be callable, got 'nope'"):
        manager.register_hooks(**hooks)


def test_manager_rejects_negative_timeout() -> None:
    with pytest.raises(ValueError, match=r"graceful_shutdown_timeout must be >= 0 seconds, got -5"):
        cotyledon.ServiceManager(graceful_shutdown_timeout=-5)


def test_manager_rejects_bad_wait_interval() -> None:
    with pytest.raises(TypeError, match=r"wait_interval must be a number of seconds >= 0"):
        cotyledon.ServiceManager(wait_interval="fast")  # type: ignore[arg-type]


def test_manager_rejects_bad_context() -> None:
    with pytest.raises(TypeError, match=r"mp_context must be a multiprocessing context"):
        cotyledon.ServiceManager(mp_context="spawn")  # type: ignore[arg-type]


def test_rejected_manager_leaves_flag_unset() -> None:
    with pytest.raises(ValueError, match="graceful_shutdown_timeout"):
        cotyledon.ServiceManager(graceful_shutdown_timeout=-1)

    manager = cotyledon.ServiceManager()

    assert isinstance(manager, cotyledon.ServiceManager)


@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_run_rejects_unpicklable_service(method: str) -> None:
    manager = cotyledon.ServiceManager(mp_context=multiprocessing.get_context(method))
    manager.add(lambda worker_id: Simple(worker_id))  # noqa: PLW0108

    with pytest.raises(
        cotyledon.UnpicklableError,
        match=rf"service '<lambda>' cannot be pickled, so the '{method}' start method",
    ):
        manager.run()


def test_run_rejects_unpicklable_args() -> None:
    manager = cotyledon.ServiceManager(mp_context=multiprocessing.get_context("spawn"))
    manager.add(Simple, 1, args=(threading.Lock(),))

    with pytest.raises(
        cotyledon.UnpicklableError, match=r"args of service 'simple' cannot be pickled"
    ):
        manager.run()


def test_run_rejects_unpicklable_new_worker_hook() -> None:
    manager = cotyledon.ServiceManager(mp_context=multiprocessing.get_context("spawn"))
    manager.add(Simple)
    manager.register_hooks(on_new_worker=lambda service_id, worker_id, service: None)

    with pytest.raises(cotyledon.UnpicklableError, match=r"on_new_worker hook"):
        manager.run()


def test_manager_usable_after_rejected_run() -> None:
    manager = cotyledon.ServiceManager(mp_context=multiprocessing.get_context("spawn"))
    manager.add(lambda worker_id: Simple(worker_id))  # noqa: PLW0108
    with pytest.raises(cotyledon.UnpicklableError):
        manager.run()

    service_id = manager.add(Simple)

    assert isinstance(service_id, uuid.UUID)


def test_run_outside_main_thread_raises() -> None:
    manager = cotyledon.ServiceManager()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            manager.run()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(timeout=10)

    assert len(errors) == 1
    assert isinstance(errors[0], RuntimeError)
    assert "must be called from the main thread" in str(errors[0])


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -float("inf")])
def test_manager_rejects_non_finite_timeout(timeout: float) -> None:
    with pytest.raises(ValueError, match=r"graceful_shutdown_timeout must be a finite number"):
        cotyledon.ServiceManager(graceful_shutdown_timeout=timeout)


def test_add_rejects_nan_service_timeout() -> None:
    class NanTimeout(cotyledon.Service):
        graceful_shutdown_timeout = float("nan")

    manager = cotyledon.ServiceManager()

    with pytest.raises(ValueError, match=r"graceful_shutdown_timeout of service 'NanTimeout'"):
        manager.add(NanTimeout)
