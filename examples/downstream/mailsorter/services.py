"""The service of mailsorter: workers that sort an inbox into an outbox.

Each message is a ``*.eml`` file dropped into the inbox (written elsewhere,
then renamed into it, so that no worker reads half a file). A ``Sorter``
worker moves it to ``outbox/<domain>/``, where ``<domain>`` is the domain
of its ``To:`` header, or ``unsorted``. The workers share the inbox out by
worker id: a worker takes the files whose name hashes to its id, so a
worker that dies and comes back with the same id takes its share again.
"""

from __future__ import annotations

import logging
import threading
import zlib
from pathlib import Path

import cotyledon
from cotyledon.types import WorkerId

LOG = logging.getLogger(__name__)

UNSORTED = "unsorted"
"""The folder of the messages without a usable ``To:`` header."""


def recipient_domain(message: str) -> str:
    """Return the domain of the first ``To:`` address of a message, lowercased."""
    for line in message.splitlines():
        if not line.strip():
            break  # the headers end at the first empty line
        name, _, value = line.partition(":")
        if name.strip().lower() == "to":
            first_address = value.split(",")[0]
            _, at, domain = first_address.rpartition("@")
            domain = domain.strip().rstrip(">").lower()
            return domain if at and domain else UNSORTED
    return UNSORTED


def owner_of(file_name: str, workers: int) -> int:
    """Return the id of the worker that sorts the file ``file_name``."""
    return zlib.crc32(file_name.encode()) % workers


class Sorter(cotyledon.Service):
    """Moves this worker's share of the inbox to the outbox, every ``interval`` s."""

    name = "sorter"
    graceful_shutdown_timeout = 10.0

    def __init__(
        self,
        worker_id: WorkerId,
        inbox: Path,
        outbox: Path,
        workers: int,
        interval: float = 0.1,
    ) -> None:
        super().__init__(worker_id)
        self._inbox = inbox
        self._outbox = outbox
        self._workers = workers
        self._interval = interval
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            self.sort_pending()
            self._stop.wait(self._interval)

    def terminate(self) -> None:
        self._stop.set()

    def sort_pending(self) -> int:
        """Move every message of this worker's share; return how many."""
        moved = 0
        for path in sorted(self._inbox.glob("*.eml")):
            if owner_of(path.name, self._workers) != self.worker_id:
                continue
            try:
                domain = recipient_domain(path.read_text(errors="replace"))
            except FileNotFoundError:
                continue  # moved away since the listing
            target = self._outbox / domain
            target.mkdir(parents=True, exist_ok=True)
            path.rename(target / path.name)
            LOG.info("Sorter %d moved %s to %s", self.worker_id, path.name, domain)
            moved += 1
        return moved
