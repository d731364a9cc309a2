"""Fixtures of the sandbox tests: one real systemd per test module.

A module asks for a newer systemd than the machine's with a module-level
``SYSTEMD_VERSION``; it is then downloaded from Debian's backports into
``BACKPORTS_DIR``, once for all runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Final

import pytest
from sandbox_support import Services
from sdsandbox import Sandbox
from sdsandbox import SandboxError
from sdsandbox import fetch_systemd
from sdsandbox import systemd_version
from sdsandbox import unavailable_reason

BACKPORTS_DIR: Final = Path("/tmp/cotyledon-systemd-backports")


@pytest.fixture(scope="module")
def sandbox(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Sandbox]:
    """A systemd running in new namespaces for the tests of one module."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    needed: int = getattr(request.module, "SYSTEMD_VERSION", 0)
    overlay = None
    if systemd_version() < needed:
        try:
            overlay = fetch_systemd(BACKPORTS_DIR)
        except SandboxError as exc:
            pytest.skip(
                f"needs systemd {needed} or later, and downloading it from Debian's "
                f"backports failed: {exc}"
            )
    sandbox = Sandbox(tmp_path_factory.mktemp("sandbox"), overlay=overlay)
    try:
        sandbox.start()
    except SandboxError as exc:
        pytest.skip(f"the systemd sandbox cannot start on this machine: {exc}")
    try:
        yield sandbox
    finally:
        sandbox.stop()


@pytest.fixture
def services(sandbox: Sandbox, tmp_path: Path) -> Iterator[Services]:
    """Install units of test managers; they are stopped after the test."""
    installed = Services(sandbox, tmp_path)
    try:
        yield installed
    finally:
        installed.close()
