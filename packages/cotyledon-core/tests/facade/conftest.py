"""Fixtures of the facade tests, which build managers in the test process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import cotyledon
from cotyledon.runtime import _signals


@pytest.fixture(autouse=True)
def _allow_new_manager() -> Iterator[None]:
    """Reset the one-manager-per-process flag around each test, as
    downstream test suites do."""
    cotyledon.ServiceManager._process_runner_already_created = False
    yield
    cotyledon.ServiceManager._process_runner_already_created = False
    # A manager catches the master's signals from its creation on; give
    # the test process its own handlers back.
    if _signals._active is not None:
        _signals._active.close()
