"""The respawn limiter: how long a slot waits before its next worker.

The first restart of a slot is immediate, so that a worker killed by
accident is replaced at once. When the same slot dies again soon after, each
further restart waits longer (exponential backoff, with jitter so that slots
that crashed together do not restart together), up to a maximum. A worker
that stays up for ``stable_after`` seconds resets its slot's count. Every
slot has a count of its own: a slot in a crash loop never delays another.
"""

from __future__ import annotations

import collections
import math
from collections.abc import Callable

from cotyledon.core._ids import Slot
from cotyledon.core._record import field
from cotyledon.core._record import record


def _non_negative(name: str, value: float) -> None:
    # Written so that NaN fails too: every comparison with NaN is False.
    if not (0 <= value < math.inf):
        raise ValueError(f"{name} must be a finite number >= 0 seconds, got {value!r}")


def _at_least_one(name: str, value: float) -> None:
    if not (1 <= value < math.inf):
        raise ValueError(f"{name} must be a finite number >= 1, got {value!r}")


def _fraction(name: str, value: float) -> None:
    if not (0 <= value < 1):
        raise ValueError(f"{name} must be >= 0 and < 1, got {value!r}")


@record
class RespawnPolicy:
    """The backoff of the restarts of one slot. Times are in seconds."""

    initial_delay: float = field(default=0.1, validator=_non_negative)
    """Delay before the second restart in a row (the first is immediate)."""

    max_delay: float = field(default=30.0, validator=_non_negative)
    """Longest delay between two restarts."""

    multiplier: float = field(default=2.0, validator=_at_least_one)
    """Factor between two consecutive delays."""

    jitter: float = field(default=0.1, validator=_fraction)
    """Each delay is moved by up to this fraction of itself, at random."""

    stable_after: float = field(default=10.0, validator=_non_negative)
    """A worker that has run this long resets the count of its slot."""

    def delay(self, failures: int, random_fraction: float) -> float:
        """Return the delay before restart number ``failures`` in a row.

        ``random_fraction`` is a number in [0, 1) from the jitter source.
        """
        if failures <= 1 or self.initial_delay == 0:
            return 0.0
        try:
            grown = self.initial_delay * self.multiplier ** (failures - 2)
        except OverflowError:
            # Thousands of deaths in a row: far past any maximum.
            grown = math.inf
        base = min(self.max_delay, grown)
        return base * (1.0 + self.jitter * (2.0 * random_fraction - 1.0))


@record(frozen=False)
class _SlotHistory:
    failures: int = 0
    started_at: float | None = None


class RespawnLimiter:
    """Count the quick deaths of each slot and give the delay of its restart.

    ``random`` returns numbers in [0, 1); the runtime passes
    ``random.Random().random`` and tests a seeded one.
    """

    def __init__(self, policy: RespawnPolicy, random: Callable[[], float]) -> None:
        self._policy = policy
        self._random = random
        self._histories: dict[Slot, _SlotHistory] = {}

    def __repr__(self) -> str:
        failing = sum(1 for h in self._histories.values() if h.failures > 1)
        return (
            f"<RespawnLimiter slots={len(self._histories)} "
            f"backing_off={failing} policy={self._policy!r}>"
        )

    @property
    def policy(self) -> RespawnPolicy:
        return self._policy

    def failures(self, slot: Slot) -> int:
        """Return the number of quick deaths of the slot in a row."""
        history = self._histories.get(slot)
        return 0 if history is None else history.failures

    def record_start(self, slot: Slot, now: float) -> None:
        """Record that the slot's worker started at ``now``."""
        self._histories.setdefault(slot, _SlotHistory()).started_at = now

    def delay_after_exit(self, slot: Slot, now: float) -> float:
        """Record an unrequested death of the slot's worker; return the delay."""
        history = self._histories.setdefault(slot, _SlotHistory())
        started_at = history.started_at
        if started_at is not None and now - started_at >= self._policy.stable_after:
            history.failures = 0
        history.started_at = None
        return self._count_failure(history)

    def delay_after_spawn_failure(self, slot: Slot) -> float:
        """Record that the slot's worker could not start; return the delay."""
        history = self._histories.setdefault(slot, _SlotHistory())
        # A failure to start always counts: retrying a failed fork at once
        # would spin while the resource (memory, pids) is exhausted.
        history.failures = max(history.failures, 1)
        return self._count_failure(history)

    def forget(self, slot: Slot) -> None:
        """Drop the history of a slot that no longer exists."""
        self._histories.pop(slot, None)

    def _count_failure(self, history: _SlotHistory) -> float:
        history.failures += 1
        return self._policy.delay(history.failures, self._random())


class RestartIntensity:
    """Count the restarts of one service within a sliding period.

    As in Erlang/OTP supervisors: at most ``restarts`` restarts within
    ``period`` seconds. A restart exactly ``period`` seconds old no longer
    counts, so restarts spaced by exactly the period never give up.
    """

    def __init__(self, restarts: int, period: float) -> None:
        self._restarts = restarts
        self._period = period
        self._times: collections.deque[float] = collections.deque()

    def __repr__(self) -> str:
        return f"<RestartIntensity {len(self._times)}/{self._restarts} in {self._period} s>"

    def allow(self, now: float) -> bool:
        """Record a restart at ``now`` and tell whether it is within the limit.

        A restart past the limit is not recorded: the service is given up.
        """
        while self._times and now - self._times[0] >= self._period:
            self._times.popleft()
        if len(self._times) >= self._restarts:
            return False
        self._times.append(now)
        return True
