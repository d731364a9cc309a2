"""The shutdown plan: when a stopping worker is killed.

A worker asked to stop gracefully gets its service's graceful shutdown
timeout; past that deadline the master kills it, and its process group,
with SIGKILL. A worker asked to exit at once (SIGINT) gets
``FAST_STOP_GRACE`` seconds before the same.
"""

from __future__ import annotations

from typing import Final

from cotyledon.core._commands import StopReason
from cotyledon.core._spec import ServiceSpec

FAST_STOP_GRACE: Final = 1.0
"""Seconds a worker has to exit after SIGINT before it is killed."""


def stop_deadline(spec: ServiceSpec | None, reason: StopReason, now: float) -> float | None:
    """Return the time at which a worker stopped for ``reason`` is killed.

    None means never: the service's timeout is 0 (wait forever).
    """
    if reason is StopReason.INTERRUPT:
        return now + FAST_STOP_GRACE
    if spec is None or spec.graceful_shutdown_timeout is None:
        return None
    return now + spec.graceful_shutdown_timeout
