"""A thread that empties a datagram socket as soon as datagrams arrive.

A Unix datagram socket queues few datagrams (10 with Linux's default
``net.unix.max_dgram_qlen``), and a sender whose datagram does not fit
waits. A manager under test that sends to a socket that only the test's
waits read would stop while the test sleeps. The reader thread keeps the
queue empty and keeps what it read until the test takes it.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
from collections.abc import Callable
from typing import Final
from typing import Generic
from typing import TypeVar
from typing import final

T = TypeVar("T")

_JOIN_TIMEOUT: Final = 5.0
"""Seconds that ``close()`` waits for the thread to end."""


@final
class SocketReader(Generic[T]):
    """Read a socket in a thread of its own, with ``read_waiting``.

    ``read_waiting()`` reads every datagram waiting on the non-blocking
    socket ``fd`` and returns what it made of them. The thread calls it
    whenever the socket is readable, and ``take()`` calls it too, so that
    whatever was queued before the call is returned. Both call it under
    one lock, which keeps the items in the order the datagrams arrived.

    ``fileno()`` is readable while items are waiting for ``take()``, and
    while paused, when datagrams wait on the socket: a test's wait selects
    on it rather than on the socket. In a process
    forked from the one that made it, where the thread does not run,
    ``take()`` returns nothing, ``pause()`` and ``resume()`` do nothing, and
    ``close()`` only closes the pipes.
    """

    def __init__(self, fd: int, read_waiting: Callable[[], list[T]], name: str) -> None:
        self._fd = fd
        self._read_waiting = read_waiting
        self._lock = threading.Lock()
        self._pending: list[T] = []
        self._failure: BaseException | None = None
        # The number of pause() calls that no resume() has undone yet, so
        # that nested blocks stall the socket until the outermost one ends.
        self._pauses = 0
        # While paused: the thread has made fileno() readable for the
        # datagrams waiting, and polls the socket again after a take().
        self._signalled = False
        self._stopping = False
        self._wake_read, self._wake_write = _nonblocking_pipe()
        # Tells the thread to look at _pauses and _stopping again.
        self._control_read, self._control_write = _nonblocking_pipe()
        self._closed = False
        self._owner_pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        paused = " paused" if self._pauses else ""
        return f"<SocketReader fd={self._fd}{paused} pending={len(self._pending)}>"

    def fileno(self) -> int:
        """Return the descriptor that is readable while items wait for ``take()``."""
        return self._wake_read

    def take(self) -> list[T]:
        """Return the items read since the last call, oldest first, and those
        of the datagrams waiting on the socket now.

        Raises RuntimeError once the thread has failed to read the socket
        and the items that it read before are taken.
        """
        if self._closed or os.getpid() != self._owner_pid:
            return []
        # Emptied before the items are taken: an item added after the take
        # leaves a byte in the pipe, so no wait misses it.
        _empty_pipe(self._wake_read)
        with self._lock:
            failure = self._failure
            if failure is not None and not self._pending:
                raise RuntimeError(f"{self!r} failed to read its socket") from failure
            items = self._pending
            self._pending = []
            if failure is None:
                items.extend(self._read_waiting())
            rearm = self._signalled
            self._signalled = False
        if rearm:
            _write_byte(self._control_write)
        if failure is not None:
            # The next wait wakes at once, and its take() raises.
            _write_byte(self._wake_write)
        return items

    def pause(self) -> None:
        """Stop reading in the thread: from the return on, only ``take()``
        reads the socket, and its queue fills between two calls.

        Each call needs a ``resume()``: the thread reads again after the
        last one.
        """
        # A forked copy may inherit the lock as the thread held it at the
        # fork, and nothing releases it. Only the owner has a thread to pause.
        if os.getpid() != self._owner_pid:
            return
        with self._lock:
            self._pauses += 1
            self._signalled = False
        _write_byte(self._control_write)

    def resume(self) -> None:
        """Undo one ``pause()``, and read in the thread again if it was the last."""
        if os.getpid() != self._owner_pid:
            return
        with self._lock:
            if self._pauses == 0:
                raise RuntimeError(f"{self!r} is not paused")
            self._pauses -= 1
        _write_byte(self._control_write)

    def close(self) -> None:
        """Stop the thread and close the pipes; the caller closes the socket."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() == self._owner_pid:
            # A forked copy must not stop the thread of the process it
            # shares these pipes with.
            with self._lock:
                self._stopping = True
            _write_byte(self._control_write)
            self._thread.join(_JOIN_TIMEOUT)
        for fd in (self._wake_read, self._wake_write, self._control_read, self._control_write):
            os.close(fd)

    def _run(self) -> None:
        listening = select.poll()
        listening.register(self._fd, select.POLLIN)
        listening.register(self._control_read, select.POLLIN)
        control = select.poll()
        control.register(self._control_read, select.POLLIN)
        while True:
            with self._lock:
                if self._stopping:
                    return
                poller = control if self._pauses and self._signalled else listening
            ready = {fd for fd, _ in poller.poll()}
            if self._control_read in ready:
                _empty_pipe(self._control_read)
                continue
            with self._lock:
                # Paused, the waits have been woken for what is queued.
                if (self._pauses and self._signalled) or self._stopping:
                    continue
                items: list[T] = []
                if self._pauses:
                    # The waits read the socket themselves: wake them, and
                    # leave the datagrams in its queue.
                    self._signalled = True
                else:
                    try:
                        items = self._read_waiting()
                    except BaseException as exc:
                        # take() raises it: the test learns that the socket
                        # is no longer read.
                        self._failure = exc
                    self._pending.extend(items)
                wake = bool(items) or self._pauses > 0
                failed = self._failure is not None
            if wake or failed:
                _write_byte(self._wake_write)
            if failed:
                return


def _nonblocking_pipe() -> tuple[int, int]:
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    os.set_blocking(write_end, False)
    return read_end, write_end


def _write_byte(fd: int) -> None:
    # A full pipe already contains a byte for the reader to find.
    with contextlib.suppress(BlockingIOError):
        os.write(fd, b"\0")


def _empty_pipe(fd: int) -> None:
    while True:
        try:
            if not os.read(fd, 4096):
                return
        except BlockingIOError:
            return
