"""Fixtures of the mailsorter tests, built on the fixtures of cotyledon-testkit.

cotyledon-testkit's pytest plugin is found through its entry point once the
distribution is installed: ``manager_process`` and ``simulator`` need no
import.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from mailsorter.folders import Folders

from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import StartManager

PROJECT_DIR = Path(__file__).parents[1]
"""The folder that contains the ``mailsorter`` package, for the manager's ``sys_path``."""


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    """An empty inbox and outbox in the test's temporary folder."""
    folders = Folders(tmp_path / "inbox", tmp_path / "outbox")
    folders.create()
    return folders


@pytest.fixture
def mailsorter(manager_process: StartManager, folders: Folders) -> ManagerProcess:
    """The mailsorter program, running on ``folders`` with every worker ready.

    It is a real manager in a fresh interpreter; every process of it is
    killed at the end of the test.
    """
    manager = manager_process(
        "mailsorter.app:main", sys_path=[PROJECT_DIR], env=folders.environment()
    )
    manager.wait_ready()
    return manager
