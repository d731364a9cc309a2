"""The check of graceful shutdown timeouts that ``ServiceManager`` makes.

``cotyledon.specs`` takes a service's timeout as given, and the manager
checks it with a private helper, so the simulator repeats the check here.
A timeout must be a real number of seconds, finite and >= 0, and a wrong
one raises the same errors with the same messages.
"""

# NOTE: a copy of ``cotyledon._validation.check_seconds``. The tests of the
# simulator's policies pin its messages to those of ServiceManager.add.

from __future__ import annotations

import math
import numbers

from cotyledon import InvalidArgumentError
from cotyledon import InvalidTypeError


def check_seconds(value: object, name: str, *, allow_none: bool = False) -> float | None:
    """Return ``value`` as seconds if it is a real number >= 0 (or None when
    ``allow_none``); raise InvalidTypeError or InvalidArgumentError otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        allowed = "a number of seconds >= 0" + (" or None" if allow_none else "")
        raise InvalidTypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    seconds = float(value)
    if math.isnan(seconds) or math.isinf(seconds):
        raise InvalidArgumentError(f"{name} must be a finite number of seconds, got {value!r}")
    if seconds < 0:
        raise InvalidArgumentError(f"{name} must be >= 0 seconds, got {value!r}")
    return seconds
