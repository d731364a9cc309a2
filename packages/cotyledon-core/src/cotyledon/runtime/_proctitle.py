"""Process titles, as ``ps`` and ``top`` show them."""

from __future__ import annotations

import os
import sys

import setproctitle


def program_name() -> str:
    """Return the name of the running program (``sys.argv[0]``'s base name)."""
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "python"
    return os.path.basename(argv0)


def set_master_title(program: str) -> None:
    """Name the master: ``prog: master process [prog --args]``."""
    setproctitle.setproctitle(f"{program}: master process [{' '.join(sys.argv)}]")


def set_worker_title(program: str, service_name: str, worker_id: int) -> None:
    """Name a worker: ``prog: service worker(3)``."""
    setproctitle.setproctitle(f"{program}: {service_name} worker({worker_id})")
