"""Helpers shared by the modules of the core."""

from __future__ import annotations

from typing import NoReturn


def assert_never(value: NoReturn) -> NoReturn:
    """Fail on a value that a dispatch over a closed union did not handle."""
    raise AssertionError(f"unhandled value: {value!r}")
