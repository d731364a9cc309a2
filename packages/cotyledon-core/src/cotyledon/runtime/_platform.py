"""What the platform offers, and what the manager does where it lacks it."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.context
import os
import signal

LOG = logging.getLogger(__name__)


def default_context() -> multiprocessing.context.BaseContext:
    """Return the multiprocessing context of the manager when none is given.

    Fork on POSIX, whatever the Python version (3.14 makes forkserver the
    default of multiprocessing): fork starts workers fastest and needs
    nothing to be picklable. Elsewhere, the platform's default.
    """
    if os.name == "posix":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def raise_open_file_limit() -> None:
    """Raise the soft limit on open descriptors to the hard limit.

    With spawn and forkserver, the master keeps two descriptors open per
    worker (the sentinel and the write end of each ``multiprocessing``
    process). A soft limit of 1024, the usual default, would then stop it
    near 500 workers. A master that forks its workers itself keeps none. Raising the soft
    limit up to the hard one needs no privilege (setrlimit(2)).
    """
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if resource.RLIM_INFINITY in (hard, soft) or soft >= hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        LOG.warning("Could not raise the open file limit from %d to %d: %s", soft, hard, exc)
    else:
        LOG.debug("Raised the open file limit from %d to %d", soft, hard)


def log_platform_limits() -> None:
    """Say once in the log which features this platform lacks."""
    if not hasattr(signal, "SIGHUP"):
        LOG.warning("This platform has no SIGHUP: reload by signal is not available")
    if not hasattr(os, "killpg"):
        LOG.warning(
            "This platform has no process groups: a worker killed at its deadline "
            "leaves its own children running"
        )
    if not hasattr(os, "pidfd_open"):
        LOG.info("This platform has no pidfd: workers check for the master's death every 0.5 s")
