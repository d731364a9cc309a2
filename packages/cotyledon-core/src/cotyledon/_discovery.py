"""Lifecycle listeners declared by installed distributions."""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from typing import Final

from cotyledon.runtime import LifecycleListener

LOG = logging.getLogger(__name__)

ENTRY_POINT_GROUP: Final = "cotyledon.listeners"
"""Each entry point names a callable that takes no argument and returns a
``LifecycleListener``, or None when it does not apply (systemd notification
outside systemd, say)."""


def discover_listeners() -> list[LifecycleListener]:
    """Build the listeners of every entry point; log and skip failures."""
    listeners = []
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factory = entry_point.load()
            listener = factory()
        except Exception:
            LOG.exception("The lifecycle listener entry point %r failed", entry_point.value)
            continue
        if listener is None:
            continue
        if not isinstance(listener, LifecycleListener):
            LOG.error(
                "The lifecycle listener entry point %r returned %r, not a LifecycleListener",
                entry_point.value,
                listener,
            )
            continue
        LOG.debug("Using the lifecycle listener %r from %r", listener, entry_point.value)
        listeners.append(listener)
    return listeners
