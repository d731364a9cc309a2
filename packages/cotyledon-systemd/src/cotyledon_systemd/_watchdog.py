"""When the master may tell systemd's watchdog that it is healthy.

The pings come from the master's own loop (its liveness tick), so a loop
that is stuck sends none. On top of that, the manager is unhealthy when
one of its services has been down for longer than the watchdog timeout.
A service is down while none of its workers has stayed ready for half the
timeout: its workers keep dying, or none can start. A worker of a crash
loop, ready for a moment before it dies, does not end the down time. A
service that has finished or been given up runs no worker on purpose, so
it never counts as down, and with ``on_give_up="continue"`` the pings go
on.

The rule counts only while the manager runs, after its first READY=1,
because systemd.service(5) says of WatchdogSec=: "The watchdog is
activated when the start-up is completed." A manager that is starting or
stopping is healthy as long as its loop runs. Times are seconds on a
monotonic clock, passed in by the caller.
"""

from __future__ import annotations

from typing import Final
from typing import final

from cotyledon import ManagerPhase
from cotyledon import ManagerStatus
from cotyledon import ServiceState
from cotyledon import ServiceStatus
from cotyledon.types import ServiceId

MIN_PING_INTERVAL: Final = 0.05
"""Minimum seconds between two pings, whatever the value of ``WATCHDOG_USEC``: a
timeout of a few microseconds would otherwise make the master's loop spin.
A unit with ``WatchdogSec=`` under 100 ms may then be killed."""

PING_SLACK: Final = 0.9
"""A ping is due after this share of the ping interval, so that two
readings of the clock a little apart never skip a tick's ping."""


@final
class Watchdog:
    """Decide, at each liveness tick, whether to send ``WATCHDOG=1``.

    ``timeout`` is ``WATCHDOG_USEC`` in seconds. sd_watchdog_enabled(3):
    "It is recommended that a daemon sends a keep-alive notification
    message to the service manager every half of the time returned here."
    """

    def __init__(self, timeout: float) -> None:
        if not timeout > 0:
            raise ValueError(f"the watchdog timeout must be > 0 seconds, got {timeout!r}")
        self.timeout = timeout
        self.ping_interval = max(timeout / 2, MIN_PING_INTERVAL)
        self._last_ping: float | None = None
        self._down_since: dict[ServiceId, float] = {}
        self._names: dict[ServiceId, str] = {}
        # When each live worker, by pid, was first seen ready.
        self._ready_since: dict[int, float] = {}

    def __repr__(self) -> str:
        return f"<Watchdog timeout={self.timeout} s last_ping={self._last_ping}>"

    def observe(self, status: ManagerStatus, now: float) -> None:
        """Record a status snapshot: which workers are ready, which services down."""
        ready = {
            slot.pid
            for service in status.services
            for slot in service.slots
            if slot.ready and slot.pid is not None
        }
        self._ready_since = {pid: self._ready_since.get(pid, now) for pid in ready}
        if not status.ready or status.phase is not ManagerPhase.RUNNING:
            self._down_since.clear()
            return
        down = set()
        for service in status.services:
            self._names[service.service_id] = service.name
            if (
                service.state is ServiceState.RUNNING
                and service.workers > 0
                and not self._has_settled_worker(service, now)
            ):
                down.add(service.service_id)
                self._down_since.setdefault(service.service_id, now)
        for service_id in set(self._down_since) - down:
            del self._down_since[service_id]

    def _has_settled_worker(self, service: ServiceStatus, now: float) -> bool:
        """True when a worker of ``service`` has been ready for half the timeout."""
        for slot in service.slots:
            if not slot.ready or slot.pid is None:
                continue
            since = self._ready_since.get(slot.pid)
            if since is not None and now - since >= self.ping_interval:
                return True
        return False

    def failing_services(self, now: float) -> list[tuple[str, float]]:
        """Return the services down for longer than the timeout, with how long."""
        return [
            (self._names.get(service_id, str(service_id)), now - since)
            for service_id, since in self._down_since.items()
            if now - since > self.timeout
        ]

    def ping_due(self, now: float) -> bool:
        """True when the last ping is old enough and the manager is healthy."""
        if self.failing_services(now):
            return False
        return self._last_ping is None or now - self._last_ping >= self.ping_interval * PING_SLACK

    def next_ping_in(self, now: float) -> float:
        """Return the seconds until the next ping is due, counted from the
        last ping, so that a tick that sent none does not delay it.

        While a service stops the pings, and before the first ping, it is a
        whole ping interval: the next tick only checks again.
        """
        if self._last_ping is None or self.failing_services(now):
            return self.ping_interval
        return max(self._last_ping + self.ping_interval - now, 0.0)

    def pinged(self, now: float) -> None:
        self._last_ping = now
