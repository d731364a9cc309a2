"""The lifecycle fields that systemd has not received yet, in order.

The master sends without waiting (see ``SystemdListener``), so a message
that finds systemd's queue full is lost. Its status text is sent again
anyway, as the latest text, but ``READY=1``, ``RELOADING=1`` and
``STOPPING=1`` change the unit's state: systemd must get each of them, in
the order they happened, unless a later one makes it stale.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from typing import final

from cotyledon_systemd._notify import FieldValue

LIFECYCLE_FIELDS: Final = frozenset({"READY", "RELOADING", "MONOTONIC_USEC", "STOPPING", "MAINPID"})
"""The fields kept when their message fails. ``MONOTONIC_USEC`` goes with
``RELOADING=1`` and ``MAINPID`` with ``READY=1``."""


@final
class LifecycleBacklog:
    """The lifecycle parts of the messages that failed, oldest first.

    ``STOPPING=1`` makes an unsent ``READY=1`` or ``RELOADING=1`` stale,
    because the service is no longer ready or reloading, and a new
    ``RELOADING=1`` makes an earlier unsent reload stale. In a manager's
    lifecycle, the backlog so contains three messages at most.
    """

    def __init__(self) -> None:
        self._messages: list[dict[str, FieldValue]] = []

    def __repr__(self) -> str:
        return f"<LifecycleBacklog {self._messages}>"

    def __bool__(self) -> bool:
        return bool(self._messages)

    @property
    def messages(self) -> list[dict[str, FieldValue]]:
        """Copies of the messages to send, oldest first."""
        return [dict(message) for message in self._messages]

    def add(self, fields: Mapping[str, FieldValue]) -> None:
        """Keep the lifecycle fields of a message that failed to send."""
        kept = {key: value for key, value in fields.items() if key in LIFECYCLE_FIELDS}
        if not kept:
            return
        if "STOPPING" in kept:
            for message in self._messages:
                if "MAINPID" in message:
                    kept.setdefault("MAINPID", message["MAINPID"])
            if any("STOPPING" in message for message in self._messages):
                return
            self._messages.clear()
        elif "RELOADING" in kept:
            reloads = [i for i, message in enumerate(self._messages) if "RELOADING" in message]
            if reloads:
                del self._messages[reloads[0] :]
        self._messages.append(kept)

    def remove_first(self) -> None:
        """Forget the oldest message, once it has been sent."""
        del self._messages[0]
