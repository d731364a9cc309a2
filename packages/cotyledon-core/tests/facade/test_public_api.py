"""The public surface that cotyledon 2.x programs use."""

from __future__ import annotations

import inspect
import multiprocessing
import signal
import subprocess
import sys
import uuid

import pytest

import cotyledon
import cotyledon.types
from cotyledon.runtime import _signals


class Named(cotyledon.Service):
    name = "custom"


class Unnamed(cotyledon.Service):
    pass


def test_exports_are_sorted_and_present() -> None:
    exported = cotyledon.__all__

    assert exported == sorted(exported)
    assert {"Service", "ServiceManager"} <= set(exported)
    assert all(hasattr(cotyledon, name) for name in exported)


def test_import_leaves_attrs_out() -> None:
    # attrs costs the master 20 to 30 ms of import before its first fork.
    code = (
        "import sys, cotyledon\n"
        "print(sorted(name for name in ('attr', 'attrs') if name in sys.modules))\n"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert out.stdout.strip() == "[]"


def test_types_module_types_the_hooks() -> None:
    # mypy checks the annotations below with the rest of the tests.
    def on_new_worker(
        service_id: cotyledon.types.ServiceId, worker_id: cotyledon.types.WorkerId, service: object
    ) -> None:
        del service_id, worker_id, service

    def on_dead_worker(
        service_id: cotyledon.types.ServiceId, worker_id: cotyledon.types.WorkerId, exit_code: int
    ) -> None:
        del service_id, worker_id, exit_code

    def on_terminate() -> None:
        pass

    terminate: cotyledon.types.OnTerminateHook = on_terminate
    reload: cotyledon.types.OnReloadHook = on_terminate
    new_worker: cotyledon.types.OnNewWorkerHook = on_new_worker
    dead_worker: cotyledon.types.OnDeadWorkerHook = on_dead_worker
    manager = cotyledon.ServiceManager()

    manager.register_hooks(terminate, reload, new_worker, dead_worker)

    assert sorted(cotyledon.types.__all__) == [
        "OnDeadWorkerHook",
        "OnNewWorkerHook",
        "OnReloadHook",
        "OnTerminateHook",
        "ServiceId",
        "WorkerId",
    ]


def test_types_module_has_id_types() -> None:
    service_id = cotyledon.types.ServiceId(uuid.uuid4())
    worker_id = cotyledon.types.WorkerId(3)

    assert isinstance(service_id, uuid.UUID)
    assert worker_id == 3


def test_manager_signature_matches_2x() -> None:
    parameters = inspect.signature(cotyledon.ServiceManager).parameters

    positional = [p.name for p in parameters.values() if p.kind is p.POSITIONAL_OR_KEYWORD]
    extra = [p for p in parameters.values() if p.kind is not p.POSITIONAL_OR_KEYWORD]
    assert positional == ["wait_interval", "graceful_shutdown_timeout", "mp_context"]
    assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in extra)
    assert parameters["wait_interval"].default == 0.01
    assert parameters["graceful_shutdown_timeout"].default == 60
    assert parameters["mp_context"].default is None


def test_add_and_hooks_signatures_match_2x() -> None:
    add = inspect.signature(cotyledon.ServiceManager.add).parameters
    hooks = inspect.signature(cotyledon.ServiceManager.register_hooks).parameters

    positional = [name for name, p in add.items() if p.kind is p.POSITIONAL_OR_KEYWORD]
    policies = [p for p in add.values() if p.kind is not p.POSITIONAL_OR_KEYWORD]
    assert positional == ["self", "service", "workers", "args", "kwargs"]
    assert all(p.kind is p.KEYWORD_ONLY and p.default is not p.empty for p in policies)
    assert list(hooks) == ["self", "on_terminate", "on_reload", "on_new_worker", "on_dead_worker"]


def test_service_name_defaults_to_class_name() -> None:
    assert Unnamed.name == "Unnamed"
    assert Named.name == "custom"


def test_subclass_gets_own_default_name() -> None:
    class Derived(Unnamed):
        pass

    class DerivedNamed(Named):
        pass

    assert Derived.name == "Derived"
    assert Unnamed.name == "Unnamed"
    assert DerivedNamed.name == "custom"


def test_service_keeps_worker_id() -> None:
    service = Unnamed(cotyledon.types.WorkerId(4))

    assert service.worker_id == 4
    assert service.graceful_shutdown_timeout is None


def test_manager_defaults_to_fork_context() -> None:
    manager = cotyledon.ServiceManager()

    assert manager.mp_context.get_start_method() == "fork"


def test_manager_keeps_given_context() -> None:
    context = multiprocessing.get_context("spawn")

    manager = cotyledon.ServiceManager(mp_context=context)

    assert manager.mp_context is context


def test_second_manager_raises_runtime_error() -> None:
    cotyledon.ServiceManager()

    try:
        cotyledon.ServiceManager()
    except RuntimeError as exc:
        message = str(exc)
    else:
        message = ""

    assert "Only one instance of ServiceManager" in message


def test_manager_flag_can_be_reset() -> None:
    cotyledon.ServiceManager()
    cotyledon.ServiceManager._process_runner_already_created = False

    manager = cotyledon.ServiceManager()

    assert isinstance(manager, cotyledon.ServiceManager)


def test_errors_inherit_builtin_types() -> None:
    assert issubclass(cotyledon.InvalidArgumentError, ValueError)
    assert issubclass(cotyledon.InvalidTypeError, TypeError)
    assert issubclass(cotyledon.UnpicklableError, TypeError)
    assert issubclass(cotyledon.InvalidArgumentError, cotyledon.CotyledonError)


def test_manager_repr_lists_services() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(Named, 2)

    text = repr(manager)

    assert "custom*2" in text
    assert "idle" in text


def test_manager_catches_signals_from_creation() -> None:
    before = signal.getsignal(signal.SIGTERM)

    cotyledon.ServiceManager()

    assert signal.getsignal(signal.SIGTERM) is not before
    # Caught and dropped, not ignored: programs started by the master get
    # the default action back at exec.
    assert callable(signal.getsignal(signal.SIGALRM))


def test_new_manager_replaces_previous_signals() -> None:
    original = signal.getsignal(signal.SIGTERM)
    cotyledon.ServiceManager()
    cotyledon.ServiceManager._process_runner_already_created = False
    cotyledon.ServiceManager()

    _signals._active.close()  # type: ignore[union-attr]

    assert signal.getsignal(signal.SIGTERM) is original


class OwnTimeout(cotyledon.Service):
    graceful_shutdown_timeout = 5


def test_timeout_setter_updates_services_without_own() -> None:
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=60)
    shared = manager.add(Named)
    own = manager.add(OwnTimeout)

    manager._graceful_shutdown_timeout = 0

    assert manager._graceful_shutdown_timeout == 0
    assert manager._entries[shared].spec.graceful_shutdown_timeout is None
    assert manager._entries[own].spec.graceful_shutdown_timeout == 5


def test_add_timeout_overrides_class_timeout() -> None:
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=60)
    shared = manager.add(Named, graceful_shutdown_timeout=3)
    own = manager.add(OwnTimeout, graceful_shutdown_timeout=7)
    from_class = manager.add(OwnTimeout)

    manager._graceful_shutdown_timeout = 0

    assert manager._entries[shared].spec.graceful_shutdown_timeout == 3
    assert manager._entries[own].spec.graceful_shutdown_timeout == 7
    assert manager._entries[from_class].spec.graceful_shutdown_timeout == 5


def test_add_rejects_negative_timeout() -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(ValueError, match="graceful_shutdown_timeout of service 'custom'"):
        manager.add(Named, graceful_shutdown_timeout=-1)


def test_add_rejects_overflowing_timeout() -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(cotyledon.InvalidArgumentError, match="must be a finite number of seconds"):
        manager.add(Named, graceful_shutdown_timeout=10**400)


class IntWorkerId(cotyledon.Service):
    """Takes its worker id as an int, as many 2.x services annotate it."""

    def __init__(self, worker_id: int) -> None:
        super().__init__(worker_id)


def test_service_takes_int_worker_id() -> None:
    service = IntWorkerId(3)

    assert service.worker_id == 3


def test_timeout_setter_rejects_negative() -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(ValueError, match="graceful_shutdown_timeout must be >= 0 seconds, got -2"):
        manager._graceful_shutdown_timeout = -2
