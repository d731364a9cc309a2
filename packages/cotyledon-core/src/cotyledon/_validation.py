"""Checks of the arguments of the public API.

Each error names the argument, its value and what to pass instead.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import Any

from cotyledon._errors import InvalidArgumentError
from cotyledon._errors import InvalidTypeError
from cotyledon._errors import UnpicklableError


def check_workers(workers: object, service_name: str) -> int:
    """Return ``workers`` if it is an int >= 1; raise otherwise."""
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise InvalidTypeError(
            f"workers must be an int >= 1 for service {service_name!r}, "
            f"got {workers!r} ({type(workers).__name__})"
        )
    if workers < 1:
        raise InvalidArgumentError(
            f"workers must be an int >= 1 for service {service_name!r}, got {workers!r}"
        )
    return workers


def check_seconds(value: object, name: str, *, allow_none: bool = False) -> float | None:
    """Return ``value`` as seconds if it is a real number >= 0; raise otherwise."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        allowed = "a number of seconds >= 0" + (" or None" if allow_none else "")
        raise InvalidTypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    try:
        seconds = float(value)
    except OverflowError:
        raise InvalidArgumentError(
            f"{name} must be a finite number of seconds, got {value!r}"
        ) from None
    # NaN compares false with everything and infinity overflows deadlines:
    # both would reach the supervisor's timers as times that never come.
    if math.isnan(seconds) or math.isinf(seconds):
        raise InvalidArgumentError(f"{name} must be a finite number of seconds, got {value!r}")
    if seconds < 0:
        raise InvalidArgumentError(f"{name} must be >= 0 seconds, got {value!r}")
    return seconds


def check_callable(value: object, name: str) -> Callable[..., Any]:
    """Return ``value`` if it is callable; raise otherwise."""
    if not callable(value):
        raise InvalidTypeError(f"{name} must be callable, got {value!r} ({type(value).__name__})")
    return value


def check_picklable(value: object, what: str, start_method: str) -> None:
    """Raise UnpicklableError if ``value`` cannot be sent to a new worker."""
    from multiprocessing.reduction import ForkingPickler

    try:
        ForkingPickler.dumps(value)
    except Exception as exc:
        raise UnpicklableError(
            f"{what} cannot be pickled, so the {start_method!r} start method "
            f"cannot pass it to a worker: {type(exc).__name__}: {exc}. Define it at "
            "module level, or use the 'fork' start method"
        ) from exc


def check_positive_seconds(value: object, name: str) -> float | None:
    """Return ``value`` as seconds if it is None or a finite number > 0; raise otherwise."""
    seconds = check_seconds(value, name, allow_none=True)
    if seconds is not None and not (0 < seconds < math.inf):
        raise InvalidArgumentError(f"{name} must be None or a number > 0 seconds, got {value!r}")
    return seconds


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; raise otherwise."""
    if not isinstance(value, str):
        raise InvalidTypeError(
            f"{name} must be one of {', '.join(map(repr, choices))}, "
            f"got {value!r} ({type(value).__name__})"
        )
    if value not in choices:
        raise InvalidArgumentError(
            f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
        )
    return value


def check_exit_statuses(value: object, name: str) -> frozenset[int]:
    """Return ``value`` as a set of exit statuses (ints from 0 to 255); raise otherwise."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidTypeError(
            f"{name} must be a collection of exit statuses, got {value!r} ({type(value).__name__})"
        )
    statuses = list(value)
    for status in statuses:
        if isinstance(status, bool) or not isinstance(status, int):
            raise InvalidTypeError(f"{name} must hold ints, got {status!r} in {value!r}")
        if not 0 <= status <= 255:
            raise InvalidArgumentError(
                f"{name} must hold exit statuses from 0 to 255, got {status!r}"
            )
    return frozenset(statuses)


def check_restart_limit(value: object, name: str) -> tuple[int, float] | None:
    """Return ``value`` if it is None or (restarts >= 0, seconds > 0); raise otherwise."""
    if value is None:
        return None
    if not isinstance(value, tuple) or len(value) != 2:
        raise InvalidTypeError(
            f"{name} must be None or a tuple (restarts, seconds), got {value!r} "
            f"({type(value).__name__})"
        )
    restarts, period = value
    if isinstance(restarts, bool) or not isinstance(restarts, int) or restarts < 0:
        raise InvalidArgumentError(f"{name}: restarts must be an int >= 0, got {restarts!r}")
    seconds = check_positive_seconds(period, f"{name}: the period")
    if seconds is None:
        raise InvalidTypeError(f"{name}: the period must be a number of seconds, got None")
    return restarts, seconds


def check_bool(value: object, name: str) -> bool:
    """Return ``value`` if it is a bool; raise otherwise."""
    if not isinstance(value, bool):
        raise InvalidTypeError(
            f"{name} must be True or False, got {value!r} ({type(value).__name__})"
        )
    return value
