"""What the supervisor is asked to run."""

from __future__ import annotations

import enum
import math

from cotyledon.core._ids import ServiceId
from cotyledon.core._record import field
from cotyledon.core._record import record


class ReloadPolicy(enum.Enum):
    """What a reload does to the running workers of a service."""

    IN_PLACE = "in-place"
    """Signal each worker, which reloads without stopping."""

    RESTART = "restart"
    """Stop each worker gracefully and start a new one in its slot."""

    ROLLING = "rolling"
    """One slot at a time: start a replacement, wait until it is ready, then
    stop the old worker. A replacement not ready in time is stopped, the
    old workers keep running, and the reload is reported as failed."""


class RestartPolicy(enum.Enum):
    """Which exits of a worker, not asked to stop, get a replacement."""

    ALWAYS = "always"
    """Every exit."""

    ON_FAILURE = "on-failure"
    """An exit with a status other than 0, or by a signal."""

    NEVER = "never"
    """None: the slot is finished once its worker ends."""


class GiveUpAction(enum.Enum):
    """What the manager does when a service exceeds its restart intensity."""

    STOP = "stop"
    """Stop every service gracefully and exit with ``GIVE_UP_EXIT_STATUS``."""

    CONTINUE = "continue"
    """Stop the workers of that service only; the other services go on."""


def _restart_limit(name: str, value: tuple[int, float] | None) -> None:
    if value is None:
        return
    restarts, period = value
    if restarts < 0 or not (0 < period < math.inf):
        raise ValueError(f"{name} must be (restarts >= 0, period > 0 seconds), got {value!r}")


def _optional_seconds(name: str, value: float | None) -> None:
    # Written so that NaN fails too: every comparison with NaN is False.
    if value is not None and not (0 < value < math.inf):
        raise ValueError(f"{name} must be None or a number > 0 seconds, got {value!r}")


@record
class ServiceSpec:
    """A service as the supervisor sees it.

    ``graceful_shutdown_timeout`` is in seconds; None means that a stopping
    worker may take as long as it needs. The keyword-only fields are the
    supervision policies; their defaults keep a worker restarted forever,
    ready when its ``run()`` starts, and never checked for liveness.
    """

    service_id: ServiceId
    name: str
    workers: int
    graceful_shutdown_timeout: float | None
    reload_policy: ReloadPolicy = ReloadPolicy.IN_PLACE
    restart: RestartPolicy = field(default=RestartPolicy.ALWAYS, kw_only=True)
    restart_prevent_exit_statuses: frozenset[int] = field(
        default=frozenset(), converter=frozenset, kw_only=True
    )
    """Exit statuses after which the slot is finished, whatever ``restart``."""
    max_restarts: tuple[int, float] | None = field(
        default=None, validator=_restart_limit, kw_only=True
    )
    """At most this many restarts within this many seconds; past it the
    service is given up. None: no limit."""
    on_give_up: GiveUpAction = field(default=GiveUpAction.STOP, kw_only=True)
    stop_manager_on_exit: bool = field(default=False, kw_only=True)
    """When a worker of this service ends without being asked to, the
    manager stops with that worker's exit status."""
    startup_timeout: float | None = field(default=None, validator=_optional_seconds, kw_only=True)
    """Seconds a new worker has to report ready before it is stopped."""
    heartbeat_timeout: float | None = field(default=None, validator=_optional_seconds, kw_only=True)
    """Seconds a ready worker may go without a heartbeat before it is
    stopped as hung. None: no liveness check."""
    max_age: float | None = field(default=None, validator=_optional_seconds, kw_only=True)
    """Seconds after which a worker is replaced gracefully, less up to
    ``MAX_AGE_JITTER`` of it, at random."""
