"""Length checks for the paths of Unix sockets.

The kernel stores a socket's path in ``sockaddr_un.sun_path``, 108 bytes
on Linux, and Python needs the path and its terminating NUL to fit in it.
A temporary directory nested under a long ``TMPDIR`` easily passes that
limit, and ``bind`` then fails with a bare ``OSError: AF_UNIX path too
long`` that names neither the path nor the variable to change.
"""

from __future__ import annotations

import errno
import os
from typing import Final

SUN_PATH_SIZE: Final = 108
"""The size of ``sockaddr_un.sun_path`` on Linux, in bytes."""

MAX_SOCKET_PATH: Final = SUN_PATH_SIZE - 1
"""The maximum length of a socket path, in bytes, that leaves room for the NUL."""

MULTIPROCESSING_SOCKET_SUFFIX: Final = len("/pymp-XXXXXXXX/listener-XXXXXXXX")
"""The length of the path that ``multiprocessing`` appends to ``TMPDIR`` for
the sockets of its fork server and of its resource sharer. ``pymp-`` and
``listener-`` each get 8 random characters in CPython 3.10 to 3.13."""


def socket_path_length(path: str) -> int:
    """Return the length of ``path`` in bytes, as the kernel counts it."""
    return len(os.fsencode(path))


def check_socket_path(path: str, what: str, fix: str) -> None:
    """Raise OSError (ENAMETOOLONG) if ``path`` is too long for a Unix socket.

    The message names ``what`` the socket is for, the path, its length and
    the limit, and ends with ``fix``, what the caller should do.
    """
    length = socket_path_length(path)
    if length > MAX_SOCKET_PATH:
        raise OSError(
            errno.ENAMETOOLONG,
            f"the path of {what} is too long for a Unix socket: {path!r} is {length} bytes, "
            f"and sun_path holds {SUN_PATH_SIZE} bytes on Linux ({MAX_SOCKET_PATH} plus the "
            f"terminating NUL); {fix}",
        )


def fits_multiprocessing_sockets(tmpdir: str) -> bool:
    """Check whether ``multiprocessing`` can bind its sockets below ``tmpdir``."""
    return socket_path_length(tmpdir) + MULTIPROCESSING_SOCKET_SUFFIX <= MAX_SOCKET_PATH
