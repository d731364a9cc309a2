"""Socket activation: the descriptors that systemd passes, by name.

A ``.socket`` unit (or ``systemd-socket-activate``) binds the sockets and
passes them to the service's process from descriptor 3 on, named by
``FileDescriptorName=``. The master takes them once, before its workers
start; workers started by fork inherit them and find them here under the
same names. Workers started by spawn or forkserver do not inherit the
master's descriptors and find nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading

from cotyledon_systemd._environment import close_passed_on_exec
from cotyledon_systemd._environment import systemd_environment

LOG = logging.getLogger(__name__)

_lock = threading.Lock()
_fds: dict[str, list[int]] | None = None
# Every socket object made from a passed descriptor stays referenced here
# for the life of the process: a collected socket object closes its
# descriptor.
_sockets: dict[str, list[socket.socket]] | None = None


def listen_fds() -> dict[str, list[int]]:
    """Return the passed descriptors by name, in the order systemd passed them.

    Names come from ``LISTEN_FDNAMES``; without it every descriptor is
    named ``unknown``. Empty when systemd passed none to this master.
    """
    global _fds  # noqa: PLW0603
    with _lock:
        if _fds is None:
            _fds = {}
            # Forked workers still get the descriptors; programs they exec
            # do not. The first take of the environment has already warned
            # of those that are not open.
            for fd, name in close_passed_on_exec(systemd_environment(), warn=False):
                _fds.setdefault(name, []).append(fd)
        return {name: list(fds) for name, fds in _fds.items()}


def listen_sockets() -> dict[str, list[socket.socket]]:
    """Return the passed sockets by name, as ``socket.socket`` objects.

    Each call returns the same objects; a descriptor that is not a socket
    (``ListenFIFO=``, say) is left out, and ``listen_fds()`` has it. Call
    it in the master before ``ServiceManager.run()``, or in a worker
    started by fork.
    """
    global _sockets  # noqa: PLW0603
    fds = listen_fds()
    with _lock:
        if _sockets is None:
            _sockets = {}
            for name, numbers in fds.items():
                for fd in numbers:
                    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                        LOG.info("Passed descriptor %d (%s) is not a socket", fd, name)
                        continue
                    # The family, type and protocol are read from the socket.
                    _sockets.setdefault(name, []).append(socket.socket(fileno=fd))
        return {name: list(sockets) for name, sockets in _sockets.items()}
