"""How a worker notices that its master has died.

On Linux 5.3 and later, a pidfd of the master becomes readable when the
master exits, whatever happened to it and whoever holds copies of its
descriptors; the worker's selector watches it, so the worker learns of the
death at once without polling. Elsewhere the worker checks every
``POLL_INTERVAL`` seconds whether its parent has changed (it is re-parented
when the master dies) or whether the master's pid is gone.
"""

from __future__ import annotations

import os
import select
from typing import Final
from typing import final

POLL_INTERVAL: Final = 0.5
"""Seconds between two checks where no pidfd is available."""


@final
class MasterWatch:
    """Tell whether the master process with ``master_pid`` is still alive."""

    def __init__(self, master_pid: int, pidfd: int | None = None) -> None:
        """``pidfd``, a pidfd of the master that the worker inherited, is
        watched without opening another, and left open by ``close()``."""
        self._master_pid = master_pid
        # The master is the parent for the fork and spawn start methods; with
        # forkserver the parent is the fork server, which also dies with it.
        self._parent_pid = os.getppid()
        self._pidfd = pidfd
        self._owns_pidfd = pidfd is None
        # A worker that starts slowly (spawn, forkserver) may find its master
        # already dead and reaped. Its pid may then belong to another process
        # already, so that death is recorded here, never polled for.
        self._dead_at_start = False
        if pidfd is None and hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(master_pid)
            except ProcessLookupError:
                self._dead_at_start = True
            except OSError:
                pass

    def __repr__(self) -> str:
        if self._dead_at_start:
            method = "gone"
        elif self._pidfd is not None:
            method = "pidfd"
        else:
            method = "polling"
        return f"<MasterWatch master_pid={self._master_pid} method={method}>"

    @property
    def fd(self) -> int | None:
        """A descriptor that becomes readable when the master exits, if any."""
        return self._pidfd

    @property
    def poll_interval(self) -> float | None:
        """Seconds between calls to ``master_alive``, or None with a pidfd.

        It is 0 when the master was dead already, so that the worker acts at once.
        """
        if self._dead_at_start:
            return 0.0
        return None if self._pidfd is not None else POLL_INTERVAL

    def master_alive(self) -> bool:
        """Check the master without blocking."""
        if self._dead_at_start or os.getppid() != self._parent_pid:
            return False
        if self._pidfd is not None:
            poller = select.poll()
            poller.register(self._pidfd, select.POLLIN)
            return not poller.poll(0)
        if os.name == "nt":
            # On Windows, os.kill() terminates the process whatever the signal.
            return True
        try:
            os.kill(self._master_pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def close(self) -> None:
        if self._pidfd is not None and self._owns_pidfd:
            os.close(self._pidfd)
        self._pidfd = None
