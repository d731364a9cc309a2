"""The supervision policy arguments of ``ServiceManager.add``: defaults,
conversion into the service's spec, and errors for bad values."""

from __future__ import annotations

from typing import Any

import pytest

import cotyledon
from cotyledon.core import GiveUpAction
from cotyledon.core import RestartPolicy
from cotyledon.core import ServiceSpec
from cotyledon.types import WorkerId


class Simple(cotyledon.Service):
    name = "simple"


def _spec(manager: cotyledon.ServiceManager, **policies: Any) -> ServiceSpec:
    service_id = manager.add(Simple, 1, **policies)
    return manager._entries[service_id].spec


def test_add_defaults_keep_old_behaviour() -> None:
    spec = _spec(cotyledon.ServiceManager())

    assert spec.restart is RestartPolicy.ALWAYS
    assert spec.restart_prevent_exit_statuses == frozenset()
    assert spec.max_restarts is None
    assert spec.stop_manager_on_exit is False
    assert (spec.startup_timeout, spec.heartbeat_timeout, spec.max_age) == (None, None, None)


def test_add_policies_reach_spec() -> None:
    spec = _spec(
        cotyledon.ServiceManager(),
        restart="on-failure",
        restart_prevent_exit_status=[3, 4],
        max_restarts=(5, 30),
        on_give_up="continue",
        stop_manager_on_exit=True,
        startup_timeout=2,
        heartbeat_timeout=1.5,
        max_age=3600,
    )

    assert spec.restart is RestartPolicy.ON_FAILURE
    assert spec.restart_prevent_exit_statuses == frozenset({3, 4})
    assert spec.max_restarts == (5, 30.0)
    assert spec.on_give_up is GiveUpAction.CONTINUE
    assert spec.stop_manager_on_exit is True
    assert (spec.startup_timeout, spec.heartbeat_timeout, spec.max_age) == (2.0, 1.5, 3600.0)


@pytest.mark.parametrize(
    ("policies", "error", "message"),
    [
        ({"restart": "sometimes"}, ValueError, r"restart of service 'simple' must be one of"),
        ({"restart": 1}, TypeError, r"restart of service 'simple' must be one of"),
        ({"restart_prevent_exit_status": 3}, TypeError, r"a collection of exit statuses"),
        ({"restart_prevent_exit_status": [256]}, ValueError, r"from 0 to 255, got 256"),
        ({"max_restarts": 3}, TypeError, r"a tuple \(restarts, seconds\)"),
        ({"max_restarts": (-1, 10)}, ValueError, r"restarts must be an int >= 0"),
        ({"max_restarts": (1, 0)}, ValueError, r"the period must be None or a number > 0"),
        ({"on_give_up": "panic"}, ValueError, r"on_give_up of service 'simple' must be one of"),
        ({"stop_manager_on_exit": 1}, TypeError, r"must be True or False"),
        ({"startup_timeout": 0}, ValueError, r"startup_timeout of service 'simple' must be"),
        ({"heartbeat_timeout": -1}, ValueError, r"heartbeat_timeout of service 'simple'"),
        ({"max_age": "1h"}, TypeError, r"max_age of service 'simple' must be"),
    ],
)
def test_add_rejects_bad_policy(policies: dict[str, Any], error: type, message: str) -> None:
    manager = cotyledon.ServiceManager()

    with pytest.raises(error, match=message):
        manager.add(Simple, 1, **policies)


def test_service_reports_outside_worker_do_nothing() -> None:
    service = Simple(WorkerId(0))

    service.notify_ready()
    service.heartbeat()

    assert service.worker_id == 0
