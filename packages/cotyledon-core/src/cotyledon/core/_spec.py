"""What the supervisor is asked to run."""

from __future__ import annotations

import enum

import attrs

from cotyledon.core._ids import ServiceId


class ReloadPolicy(enum.Enum):
    """What a reload does to the running workers of a service."""

    IN_PLACE = "in-place"
    """Signal each worker, which reloads without stopping."""

    RESTART = "restart"
    """Stop each worker gracefully and start a new one in its slot."""


@attrs.frozen
class ServiceSpec:
    """A service as the supervisor sees it.

    ``graceful_shutdown_timeout`` is in seconds; None means that a stopping
    worker may take as long as it needs.
    """

    service_id: ServiceId
    name: str
    workers: int
    graceful_shutdown_timeout: float | None
    reload_policy: ReloadPolicy = ReloadPolicy.IN_PLACE
