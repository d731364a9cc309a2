"""The real clock of the runtime."""

from __future__ import annotations

import random
import time
from typing import final


@final
class MonotonicClock:
    """``time.monotonic``, shifted by a random offset.

    The offset makes a time from this clock meaningless next to one from
    ``time.monotonic`` or a fake clock, so that code mixing clocks fails
    in tests at once instead of working by chance.
    """

    def __init__(self) -> None:
        self._offset = random.uniform(1_000.0, 1_000_000.0)

    def __repr__(self) -> str:
        return f"<MonotonicClock now={self.now():.3f}>"

    def now(self) -> float:
        return time.monotonic() + self._offset
