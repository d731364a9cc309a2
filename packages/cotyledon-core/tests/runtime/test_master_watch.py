"""How a worker watches its master: at once, even when it starts late."""

from __future__ import annotations

import os
import subprocess

import pytest

from cotyledon.runtime._master_watch import MasterWatch


def _reaped_pid() -> int:
    """Return the pid of a process that has exited and been reaped."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux 5.3)")
def test_master_watch_live_master_has_pidfd() -> None:
    watch = MasterWatch(os.getpid())
    try:
        assert watch.master_alive()
        assert watch.fd is not None
        assert watch.poll_interval is None
        assert repr(watch) == f"<MasterWatch master_pid={os.getpid()} method=pidfd>"
    finally:
        watch.close()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux 5.3)")
def test_master_watch_reaped_master_is_gone() -> None:
    """A worker that starts after its master was reaped must not poll the
    master's pid, which another process may reuse, and must not wait a
    poll interval before it acts."""
    pid = _reaped_pid()
    watch = MasterWatch(pid)
    try:
        assert not watch.master_alive()
        assert watch.poll_interval == 0.0
        assert repr(watch) == f"<MasterWatch master_pid={pid} method=gone>"
    finally:
        watch.close()


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux 5.3)")
def test_master_watch_inherited_pidfd_stays_open() -> None:
    pidfd = os.pidfd_open(os.getpid())
    try:
        watch = MasterWatch(os.getpid(), pidfd)
        watched = watch.fd
        assert watched == pidfd
        assert watch.master_alive()

        watch.close()

        assert watch.fd is None
        os.fstat(pidfd)  # still open: raises OSError once closed
    finally:
        os.close(pidfd)
