"""Requests to the master's loop from other threads and from hooks."""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from typing import final

from cotyledon.core import Event


@final
class RequestQueue:
    """Events for the master's loop, put from any thread.

    The loop attaches a wake function while it runs; each ``put`` calls it,
    so the loop picks the event up at once. Events put while no loop runs
    wait for the next one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: collections.deque[Event] = collections.deque()
        self._wake: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<RequestQueue pending={len(self._events)} attached={self._wake is not None}>"

    def put(self, event: Event) -> None:
        with self._lock:
            self._events.append(event)
            wake = self._wake
        if wake is not None:
            wake()

    def drain(self) -> list[Event]:
        with self._lock:
            events = list(self._events)
            self._events.clear()
        return events

    def attach(self, wake: Callable[[], None]) -> None:
        with self._lock:
            self._wake = wake

    def detach(self) -> None:
        with self._lock:
            self._wake = None
