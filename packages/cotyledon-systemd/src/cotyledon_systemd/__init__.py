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
"""

from cotyledon_systemd._activation import listen_fds
from cotyledon_systemd._activation import listen_sockets
from cotyledon_systemd._environment import SYSTEMD_VARIABLES
from cotyledon_systemd._environment import SystemdEnvironment
from cotyledon_systemd._environment import systemd_environment
from cotyledon_systemd._environment import take_environment
from cotyledon_systemd._listener import DISABLE_ENV
from cotyledon_systemd._listener import SystemdListener
from cotyledon_systemd._listener import create_listener
from cotyledon_systemd._notify import InvalidNotifySocketError
from cotyledon_systemd._notify import Notifier
from cotyledon_systemd._notify import format_message
from cotyledon_systemd._notify import notify_address
from cotyledon_systemd._oneshot import notify
from cotyledon_systemd._watchdog import Watchdog

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
