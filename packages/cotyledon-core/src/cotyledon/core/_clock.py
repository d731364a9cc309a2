"""The time source of the supervisor."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """A monotonic clock, in seconds.

    The core never reads a clock by itself: every call into the supervisor
    takes the current time as an argument. The runtime reads the real
    monotonic clock, and tests pass a fake one that moves only when told.
    """

    def now(self) -> float:
        """Return the current time, in seconds, never less than before."""
        ...
