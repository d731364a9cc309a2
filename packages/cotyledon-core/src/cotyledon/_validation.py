"""Checks of the arguments of the public API, with errors that say what to do."""

from __future__ import annotations

import numbers
from collections.abc import Callable
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
    if value < 0:
        raise InvalidArgumentError(f"{name} must be >= 0 seconds, got {value!r}")
    return float(value)


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
