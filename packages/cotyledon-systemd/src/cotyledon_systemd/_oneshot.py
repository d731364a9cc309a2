"""A one-shot sd_notify send, for code outside the listener."""

from __future__ import annotations

import os

from cotyledon_systemd._environment import taken_environment
from cotyledon_systemd._notify import NOTIFY_SOCKET_ENV
from cotyledon_systemd._notify import Fields
from cotyledon_systemd._notify import FieldValue
from cotyledon_systemd._notify import Notifier


def notify(fields: Fields = (), /, **more: FieldValue) -> bool:
    """Send one sd_notify message to ``$NOTIFY_SOCKET``; False if unset.

    A one-shot helper: it reads the environment at each call. In the
    process that took the systemd variables out of the environment (the
    master, once its listener or ``systemd_environment()`` has run), it
    sends to the ``NOTIFY_SOCKET`` taken. Workers find none and send
    nothing.
    """
    socket_path = os.environ.get(NOTIFY_SOCKET_ENV)
    if socket_path is None:
        taken = taken_environment()
        if taken is not None and taken.pid == os.getpid():
            socket_path = taken.notify_socket
    notifier = Notifier(socket_path)
    try:
        return notifier.notify(fields, **more)
    finally:
        notifier.close()
