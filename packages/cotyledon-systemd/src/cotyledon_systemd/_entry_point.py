"""The ``cotyledon.listeners`` entry point of cotyledon-systemd.

Every master where this distribution is installed loads the entry point
at each ``run()``, under systemd or not. So this module imports the
standard library alone. ``create_listener`` imports the module that takes
the systemd variables only when one of them is set, and the listener
only when ``NOTIFY_SOCKET`` is set. Outside systemd, the master gains
this module and the package's ``__init__``, nothing more.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import TYPE_CHECKING
from typing import Final

if TYPE_CHECKING:
    from cotyledon_systemd._listener import SystemdListener

LOG = logging.getLogger(__name__)

DISABLE_ENV: Final = "COTYLEDON_SYSTEMD"
"""``COTYLEDON_SYSTEMD=0`` keeps the entry point from creating a listener."""

_OFF_VALUES: Final = frozenset({"0", "false", "no", "off"})

SYSTEMD_VARIABLES: Final = (
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "LISTEN_FDS",
    "LISTEN_PID",
    "LISTEN_FDNAMES",
)
"""The variables that systemd sets for the process it starts, and that
the master takes out of its environment."""

_ENVIRONMENT_MODULE: Final = "cotyledon_systemd._environment"

# The pid of the process whose entry point found no systemd variable and
# so took nothing; None until then.
_pid_without_variables: int | None = None


def create_listener() -> SystemdListener | None:
    """The ``cotyledon.listeners`` entry point: a listener under systemd.

    Returns None when ``COTYLEDON_SYSTEMD`` is ``0`` (or ``false``, ``no``,
    ``off``), when this process already made a ``SystemdListener`` (passed
    to the manager by hand), and when ``NOTIFY_SOCKET`` is unset. Unless
    disabled, it takes the systemd variables out of the environment, so
    that workers never inherit ``LISTEN_*`` or ``WATCHDOG_*`` either.
    Raises ``InvalidNotifySocketError`` for a ``NOTIFY_SOCKET`` that names
    no usable address.

    The variables are taken once per process, by the first call that is
    not disabled or by an earlier ``systemd_environment()``. When that
    take finds none, later calls find none either, even if the program
    sets some in between.
    """
    global _pid_without_variables  # noqa: PLW0603
    if os.environ.get(DISABLE_ENV, "").strip().lower() in _OFF_VALUES:
        LOG.debug("%s=%s: no systemd notification", DISABLE_ENV, os.environ[DISABLE_ENV])
        return None
    if _pid_without_variables is not None:
        return None
    # Until the environment module is imported, nothing has taken the
    # variables yet and no SystemdListener exists, because the listener
    # module imports it.
    if _ENVIRONMENT_MODULE not in sys.modules:
        if not any(name in os.environ for name in SYSTEMD_VARIABLES):
            _pid_without_variables = os.getpid()
            return None
        if "NOTIFY_SOCKET" not in os.environ:
            # Socket activation or a watchdog without notification: take
            # the variables out of the environment, so that workers do not
            # inherit them, without importing the listener.
            from cotyledon_systemd._environment import systemd_environment

            systemd_environment()
            return None
    from cotyledon_systemd._listener import create_from_environment

    return create_from_environment()


def pid_without_variables() -> int | None:
    """Return the pid of the process whose entry point found no systemd
    variable and took nothing, or None when it has not run or found some."""
    return _pid_without_variables
