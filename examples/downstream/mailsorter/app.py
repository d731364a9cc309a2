"""The mailsorter program: a manager of Sorter workers.

``python -m mailsorter.app`` reads its folders from ``MAILSORTER_INBOX``
and ``MAILSORTER_OUTBOX`` and runs until SIGTERM (exit 0) or SIGINT
(exit 1); SIGHUP restarts the sorters. When the sorters crash more often
than ``SORTER_MAX_RESTARTS`` allows, the manager gives them up and exits
70, so that the init system restarts the whole program.
"""

from __future__ import annotations

import logging
from typing import Final
from typing import NoReturn

import cotyledon
from mailsorter.folders import Folders
from mailsorter.services import Sorter

SORTER_WORKERS: Final = 2
SHUTDOWN_TIMEOUT: Final = 30.0
"""Seconds a stopping worker may take, for services without a timeout of their own."""
SORTER_MAX_RESTARTS: Final = (10, 60.0)
"""At most 10 restarts of the sorters within 60 s; one more gives them up."""


def build_manager(folders: Folders, workers: int = SORTER_WORKERS) -> cotyledon.ServiceManager:
    """Return a manager of ``workers`` sorters, not started yet."""
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=SHUTDOWN_TIMEOUT)
    manager.add(
        Sorter,
        workers=workers,
        args=(folders.inbox, folders.outbox, workers),
        max_restarts=SORTER_MAX_RESTARTS,
    )
    return manager


def main() -> NoReturn:
    """Run the manager on the folders that the environment names."""
    logging.basicConfig(level=logging.INFO)
    folders = Folders.from_environment()
    folders.create()
    build_manager(folders).run()


if __name__ == "__main__":
    main()
