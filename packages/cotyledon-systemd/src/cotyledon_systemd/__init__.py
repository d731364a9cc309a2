"""systemd integration for cotyledon managers.

Installed next to cotyledon-core, it reports a manager that runs under
systemd (``NOTIFY_SOCKET`` set) through the ``cotyledon.listeners`` entry
point, with no code change: readiness once the workers are ready, status,
reloads, stop, and watchdog pings. It also hands socket-activated
descriptors to services by name.

- ``SystemdListener``: the lifecycle listener; ``create_listener`` is its
  entry point.
- ``Notifier``, ``notify``: an sd_notify client.
- ``listen_sockets``, ``listen_fds``: the sockets that systemd passed.
- ``systemd_environment``: the systemd variables, taken out of the
  environment so that workers do not inherit them.

The package imports each of these on first use. Every master where this
distribution is installed loads the entry point, so one that does not run
under systemd imports the entry point's module alone, not the listener
and the sd_notify client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from cotyledon_systemd._activation import listen_fds
    from cotyledon_systemd._activation import listen_sockets
    from cotyledon_systemd._entry_point import DISABLE_ENV
    from cotyledon_systemd._entry_point import SYSTEMD_VARIABLES
    from cotyledon_systemd._entry_point import create_listener
    from cotyledon_systemd._environment import SystemdEnvironment
    from cotyledon_systemd._environment import systemd_environment
    from cotyledon_systemd._environment import take_environment
    from cotyledon_systemd._listener import SystemdListener
    from cotyledon_systemd._notify import InvalidNotifySocketError
    from cotyledon_systemd._notify import Notifier
    from cotyledon_systemd._notify import format_message
    from cotyledon_systemd._notify import notify_address
    from cotyledon_systemd._oneshot import notify
    from cotyledon_systemd._watchdog import Watchdog

_SOURCES: dict[str, str] = {
    "listen_fds": "cotyledon_systemd._activation",
    "listen_sockets": "cotyledon_systemd._activation",
    "DISABLE_ENV": "cotyledon_systemd._entry_point",
    "SYSTEMD_VARIABLES": "cotyledon_systemd._entry_point",
    "create_listener": "cotyledon_systemd._entry_point",
    "SystemdEnvironment": "cotyledon_systemd._environment",
    "systemd_environment": "cotyledon_systemd._environment",
    "take_environment": "cotyledon_systemd._environment",
    "SystemdListener": "cotyledon_systemd._listener",
    "InvalidNotifySocketError": "cotyledon_systemd._notify",
    "Notifier": "cotyledon_systemd._notify",
    "format_message": "cotyledon_systemd._notify",
    "notify_address": "cotyledon_systemd._notify",
    "notify": "cotyledon_systemd._oneshot",
    "Watchdog": "cotyledon_systemd._watchdog",
}

__all__ = [
    "DISABLE_ENV",
    "SYSTEMD_VARIABLES",
    "InvalidNotifySocketError",
    "Notifier",
    "SystemdEnvironment",
    "SystemdListener",
    "Watchdog",
    "create_listener",
    "format_message",
    "listen_fds",
    "listen_sockets",
    "notify",
    "notify_address",
    "systemd_environment",
    "take_environment",
]


if not TYPE_CHECKING:
    # Hidden from type checkers, which would otherwise accept any name.

    def __getattr__(name: str) -> Any:
        source = _SOURCES.get(name)
        if source is None:
            raise AttributeError(f"module 'cotyledon_systemd' has no attribute {name!r}")
        value = getattr(importlib.import_module(source), name)
        globals()[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted([*globals(), *_SOURCES])
