"""Signal delivery into an event loop.

Handlers do nothing: ``signal.set_wakeup_fd`` writes the number of each
caught signal to a non-blocking pipe that the loop watches with its
selector, and the loop acts on the numbers it reads. The same pipe takes a
zero byte from threads that want the loop to look at its queue, since no
signal has the number 0.

The calls go to ``_signal``, the C module under ``signal``: the wrappers of
``signal`` turn every number into an enum member and back, which costs the
master time at each spawn, and costs a new worker copy-on-write faults on
objects it would not otherwise touch.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # no stub; the C half of signal
import contextlib
import os
import signal
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from types import FrameType
from typing import Any
from typing import Final
from typing import final

WAKE_BYTE: Final = b"\0"
"""Written by threads to wake the loop; never a signal number."""

_READ_SIZE: Final = 4096

_c_signal: Callable[[int, Any], Any] = _signal.signal
_sigmask: Callable[[int, Iterable[int]], set[int]] | None = getattr(
    _signal, "pthread_sigmask", None
)


def _ignore(signum: int, frame: FrameType | None) -> None:
    """Do nothing: the C handler has already written to the wakeup fd."""


def set_handler(signum: int, handler: object) -> object:
    """Install ``handler`` for ``signum``; return the previous handler.

    The C function accepts SIG_DFL and SIG_IGN as plain ints only, not as
    the members of ``signal.Handlers``.
    """
    if isinstance(handler, int):
        handler = int(handler)
    return _c_signal(signum, handler)


def available_signals(*names: str) -> list[signal.Signals]:
    """Return the signals among ``names`` that this platform has."""
    return [getattr(signal, name) for name in names if hasattr(signal, name)]


@contextlib.contextmanager
def blocked(signals: Iterable[int]) -> Iterator[None]:
    """Block ``signals`` in the calling thread for the ``with`` block.

    A child forked inside the block starts with them blocked, so none of
    them runs one of the parent's handlers before the child installs its
    own. Where ``pthread_sigmask`` is missing, nothing is blocked.
    """
    previous = block(signals)
    try:
        yield
    finally:
        restore(previous)


def block(signals: Iterable[int]) -> set[int] | None:
    """Block ``signals`` in the calling thread; return the previous mask for
    ``restore``, or None where the platform cannot block signals.

    The plain-function form of ``blocked``, for the fork of a worker: the
    generator of a context manager is more Python code for the master to
    run between two forks, and each object it touches is a page that the
    workers stop sharing.
    """
    if _sigmask is None:
        return None
    return _sigmask(signal.SIG_BLOCK, signals)


def restore(mask: set[int] | None) -> None:
    """Set back a signal mask that ``block`` returned."""
    if mask is not None and _sigmask is not None:
        _sigmask(signal.SIG_SETMASK, mask)


def unblock(signals: Iterable[int]) -> None:
    """Unblock ``signals`` in the calling thread, where the platform can."""
    if _sigmask is not None:
        _sigmask(signal.SIG_UNBLOCK, signals)


# The wakeup of this process, undone in any child forked from it: see
# _forget_in_child.
_active: SignalWakeup | None = None


def _forget_in_child() -> None:
    """Give a forked child back the handlers that its parent had replaced.

    Without this, a child forked by the master (a worker before it sets up
    its own loop, or a helper that user code forks) would write its signals
    into the master's wakeup pipe, and the master would act on them as if
    they were its own. The child's pipe copies stay open but unused.
    """
    global _active  # noqa: PLW0603
    wakeup = _active
    if wakeup is None or wakeup.owner_pid == os.getpid():
        return
    _active = None
    signal.set_wakeup_fd(-1)
    for signum, handler in wakeup.previous_handlers.items():
        set_handler(signum, handler)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


@final
class SignalWakeup:
    """The wakeup pipe of one process and the handlers that feed it.

    Must be created and closed in the main thread. ``caught`` signals get
    the do-nothing handler. Closing restores the previous handlers and
    wakeup fd. Signals that arrive
    before the loop watches the pipe wait in it.
    """

    def __init__(self, caught: Iterable[int]) -> None:
        global _active  # noqa: PLW0603
        self.owner_pid = os.getpid()
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self.previous_handlers: dict[int, object] = {}
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for signum in caught:
            self.previous_handlers[signum] = set_handler(signum, _ignore)
        _active = self

    def __repr__(self) -> str:
        return f"<SignalWakeup fd={self._read_fd} signals={sorted(self.previous_handlers)}>"

    @property
    def fd(self) -> int:
        """The end of the pipe to watch for reading."""
        return self._read_fd

    @property
    def fds(self) -> tuple[int, int]:
        """Both ends of the pipe (a forked child closes them)."""
        return self._read_fd, self._write_fd

    def wake(self) -> None:
        """Wake the loop from another thread."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._write_fd, WAKE_BYTE)

    def drain(self) -> bytes:
        """Read every pending byte: signal numbers, and zeros from ``wake``."""
        chunks = []
        while True:
            try:
                chunk = os.read(self._read_fd, _READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
            if len(chunk) < _READ_SIZE:
                break
        return b"".join(chunks)

    def close(self) -> None:
        """Restore the previous handlers and wakeup fd; close the pipe."""
        global _active  # noqa: PLW0603
        if _active is self:
            _active = None
        for signum, handler in self.previous_handlers.items():
            set_handler(signum, handler)
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        os.close(self._read_fd)
        os.close(self._write_fd)


def install_master_signals() -> SignalWakeup:
    """Catch the master's signals into a new wakeup pipe.

    SIGTERM, SIGINT, SIGHUP and SIGCHLD wake the loop. SIGALRM is caught
    too, and the loop drops it: a stray one would otherwise end the master.
    It is not ignored, because an ignored signal stays ignored across exec,
    in every program that a hook of the master runs. A wakeup that an
    earlier manager of this process left open is closed first: there is one
    manager per process, so a new one replaces it.
    """
    if _active is not None and _active.owner_pid == os.getpid():
        _active.close()
    return SignalWakeup(
        caught=available_signals("SIGTERM", "SIGINT", "SIGHUP", "SIGCHLD", "SIGALRM"),
    )
