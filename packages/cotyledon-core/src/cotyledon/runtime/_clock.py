"""The real clock of the runtime, and its source of random numbers."""

from __future__ import annotations

import os
import time
from typing import final


def random_fraction() -> float:
    """Return a number in [0, 1) drawn from ``os.urandom``.

    The ``random`` module would do, but importing it in the master makes
    every forked worker reseed its generator from the system, which costs
    each about 40 page faults before its first line of code.
    """
    return int.from_bytes(os.urandom(7), "big") / (1 << 56)


@final
class MonotonicClock:
    """``time.monotonic``, shifted by a random offset.

    The offset makes a time from this clock meaningless next to one from
    ``time.monotonic`` or a fake clock, so that code mixing clocks fails
    in tests at once instead of working by chance.
    """

    def __init__(self) -> None:
        self._offset = 1_000.0 + random_fraction() * 999_000.0

    def __repr__(self) -> str:
        return f"<MonotonicClock now={self.now():.3f}>"

    def now(self) -> float:
        return time.monotonic() + self._offset

    def of_monotonic(self, when: float) -> float:
        """Return the time on this clock of ``when``, a ``time.monotonic()``
        of any process of this machine (CLOCK_MONOTONIC on Linux)."""
        return when + self._offset
