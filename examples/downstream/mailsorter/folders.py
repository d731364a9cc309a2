"""The inbox and outbox folders of a mailsorter, and how to drop a message."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path

INBOX_ENV = "MAILSORTER_INBOX"
OUTBOX_ENV = "MAILSORTER_OUTBOX"


@dataclasses.dataclass(frozen=True)
class Folders:
    """The folder that messages are dropped into, and the one they are sorted into."""

    inbox: Path
    outbox: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> Folders:
        """Read the folders from ``MAILSORTER_INBOX`` and ``MAILSORTER_OUTBOX``."""
        missing = [name for name in (INBOX_ENV, OUTBOX_ENV) if not environ.get(name)]
        if missing:
            raise KeyError(f"set {' and '.join(missing)} to the folders of the mailsorter")
        return cls(Path(environ[INBOX_ENV]), Path(environ[OUTBOX_ENV]))

    def environment(self) -> dict[str, str]:
        """Return the environment variables that name these folders."""
        return {INBOX_ENV: str(self.inbox), OUTBOX_ENV: str(self.outbox)}

    def create(self) -> None:
        """Create both folders if they are missing."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.outbox.mkdir(parents=True, exist_ok=True)

    def drop(self, name: str, to: str, body: str = "") -> Path:
        """Put a message ``name.eml`` addressed to ``to`` in the inbox; return its path.

        The message is written under a name that sorters skip, then renamed,
        so that a sorter never reads half a message.
        """
        final = self.inbox / f"{name}.eml"
        partial = self.inbox / f".{name}.partial"
        partial.write_text(f"To: {to}\n\n{body}")
        partial.rename(final)
        return final

    def sorted_path(self, name: str, domain: str) -> Path:
        """Return where the message ``name.eml`` lands once sorted to ``domain``."""
        return self.outbox / domain / f"{name}.eml"
