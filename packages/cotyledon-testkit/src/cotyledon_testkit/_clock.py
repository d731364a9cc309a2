"""A fake clock for testing time-dependent supervision logic without sleeping."""

from __future__ import annotations

import math
from typing import final


@final
class FakeClock:
    """A clock that moves only when told, implementing ``cotyledon.core.Clock``.

    It starts at ``start`` seconds and never goes back: ``advance`` refuses
    negative or non-finite amounts, and ``jump_to`` refuses a time in the
    past. Pass ``clock.now()`` to ``Supervisor.handle``, and
    ``clock.jump_to(step.deadline)`` to reach the next deadline that the
    supervisor asked for.
    """

    def __init__(self, start: float = 0.0) -> None:
        if not math.isfinite(start):
            raise ValueError(f"start must be a finite number of seconds, got {start!r}")
        self._now = float(start)

    def __repr__(self) -> str:
        return f"<FakeClock now={self._now:.6f}>"

    def now(self) -> float:
        """Return the current fake time, in seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move the clock forward by ``seconds``; return the new time."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(
                f"a fake clock only moves forward: advance() takes a finite number "
                f"of seconds >= 0, got {seconds!r}"
            )
        self._now += seconds
        return self._now

    def jump_to(self, deadline: float | None) -> float:
        """Move the clock to ``deadline`` (no move if it is None or already
        past); return the new time.

        A deadline earlier than now is not an error: the supervisor reports
        deadlines that are due at once, and jumping to them changes nothing.
        """
        if deadline is not None:
            if not math.isfinite(deadline):
                raise ValueError(f"deadline must be a finite time, got {deadline!r}")
            self._now = max(self._now, float(deadline))
        return self._now
