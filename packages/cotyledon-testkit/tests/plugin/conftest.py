"""Fixtures of the plugin tests, which run pytest on generated test files.

The ``pytester`` fixture comes from the ``-p pytester`` option of the root
pytest configuration.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator

import pytest
from plugin_support import alive_in_session


@pytest.fixture
def sessions_to_reap() -> Iterator[list[int]]:
    """A list of session ids whose processes are killed after the test.

    A test adds the sessions of the managers that an inner pytest run
    started, so that nothing survives a failed check.
    """
    sessions: list[int] = []
    yield sessions
    for session in sessions:
        for pid in alive_in_session(session):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def inner_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A temporary directory for an inner pytest run that ends without its
    teardown (killed, or ended by ``os._exit``), removed after the test.

    The run's harnesses keep their files in it: they have no chance to
    remove them themselves.
    """
    path = tempfile.mkdtemp(prefix="cotyledon-plugin-")
    monkeypatch.setenv("TMPDIR", path)
    yield path
    shutil.rmtree(path, ignore_errors=True)
