"""``cotyledon.specs``: the spec of a service as ``ServiceManager.add`` builds it."""

from __future__ import annotations

import uuid

import pytest

import cotyledon
from cotyledon.core import ReloadPolicy
from cotyledon.core import ServiceId
from cotyledon.specs import default_reload_policy
from cotyledon.specs import service_name
from cotyledon.specs import service_spec
from cotyledon.types import WorkerId

SERVICE_ID = ServiceId(uuid.UUID(int=1))


class Restarted(cotyledon.Service):
    """Keeps the default reload()."""

    name = "restarted"


class InPlace(cotyledon.Service):
    def reload(self) -> None:
        """Reloads in place."""


def make_service(worker_id: WorkerId) -> cotyledon.Service:
    return InPlace(worker_id)


def test_service_name_prefers_name_attribute() -> None:
    assert service_name(Restarted) == "restarted"


def test_service_name_of_function_is_its_name() -> None:
    assert service_name(make_service) == "make_service"


def test_default_reload_keeps_default_restarts() -> None:
    assert default_reload_policy(Restarted) is ReloadPolicy.RESTART


def test_default_reload_own_reload_in_place() -> None:
    assert default_reload_policy(InPlace) is ReloadPolicy.IN_PLACE


def test_default_reload_function_in_place() -> None:
    assert default_reload_policy(make_service) is ReloadPolicy.IN_PLACE


def test_service_spec_reload_overrides_default() -> None:
    spec = service_spec(
        SERVICE_ID, "web", 2, 5.0, default_reload=ReloadPolicy.RESTART, reload="rolling"
    )

    assert spec.reload_policy is ReloadPolicy.ROLLING
    assert (spec.name, spec.workers, spec.graceful_shutdown_timeout) == ("web", 2, 5.0)


def test_service_spec_rejects_bad_workers() -> None:
    with pytest.raises(
        cotyledon.InvalidArgumentError, match="workers must be an int >= 1 for service 'web', got 0"
    ):
        service_spec(SERVICE_ID, "web", 0, None, default_reload=ReloadPolicy.IN_PLACE)
