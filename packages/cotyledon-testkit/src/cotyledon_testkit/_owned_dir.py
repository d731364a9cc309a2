"""A temporary directory that only the process that made it removes.

``tempfile.TemporaryDirectory`` removes its directory at interpreter exit
in any process that has a copy of it, so a child that the test forks and
that exits normally removes the files of its parent's harness.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from typing import final


def _remove(path: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        shutil.rmtree(path, ignore_errors=True)


@final
class OwnedTemporaryDirectory:
    """A new directory in ``TMPDIR``, removed by ``cleanup()``, by garbage
    collection or at exit, but only in the process that made it."""

    def __init__(self, prefix: str) -> None:
        self.name = tempfile.mkdtemp(prefix=prefix)
        self._finalizer = weakref.finalize(self, _remove, self.name, os.getpid())

    def __repr__(self) -> str:
        return f"<OwnedTemporaryDirectory {self.name!r}>"

    def cleanup(self) -> None:
        """Remove the directory and its files, in the owner process only."""
        self._finalizer()
