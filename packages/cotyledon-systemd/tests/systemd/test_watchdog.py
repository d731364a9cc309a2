"""The watchdog's health rule, on status snapshots made by hand."""

from __future__ import annotations

import pytest
from systemd_support import manager
from systemd_support import service

from cotyledon import ManagerPhase
from cotyledon import ServiceState
from cotyledon_systemd import Watchdog


def test_watchdog_pings_every_half_timeout() -> None:
    watchdog = Watchdog(2.0)
    watchdog.pinged(10.0)

    assert not watchdog.ping_due(10.5)
    assert watchdog.ping_due(11.0)
    assert watchdog.ping_interval == 1.0


def test_watchdog_first_ping_due_at_once() -> None:
    assert Watchdog(2.0).ping_due(0.0)


def test_watchdog_stops_when_service_down() -> None:
    watchdog = Watchdog(2.0)
    status = manager(service("web", 0, 2), service("mail", 1, 1, pid=2000))
    watchdog.observe(status, 9.0)
    watchdog.observe(status, 10.0)

    assert watchdog.ping_due(11.0)
    assert not watchdog.ping_due(11.5)
    assert watchdog.failing_services(11.5) == [("web", 2.5)]


def test_watchdog_resumes_when_service_recovers() -> None:
    watchdog = Watchdog(2.0)
    watchdog.observe(manager(service("web", 0, 2)), 10.0)
    # Ready since 12.5: it counts once it has been ready for 1 s.
    watchdog.observe(manager(service("web", 1, 2)), 12.5)
    due_while_settling = watchdog.ping_due(13.0)

    watchdog.observe(manager(service("web", 1, 2)), 13.5)

    assert not due_while_settling
    assert watchdog.ping_due(13.5)


def test_watchdog_brief_readiness_stays_down() -> None:
    watchdog = Watchdog(2.0)
    watchdog.observe(manager(service("web", 0, 1)), 10.0)
    for now in (10.5, 11.0, 11.5, 12.0):
        # A crash loop: each new worker is seen ready once, then it is gone.
        watchdog.observe(manager(service("web", 1, 1, pid=int(now * 10))), now)
        watchdog.observe(manager(service("web", 0, 1)), now + 0.1)

    assert watchdog.failing_services(12.5) == [("web", 2.5)]


def test_watchdog_ignores_down_time_before_ready() -> None:
    watchdog = Watchdog(2.0)
    watchdog.observe(manager(service("web", 0, 2), ready=False), 10.0)

    watchdog.observe(manager(service("web", 0, 2)), 20.0)

    assert watchdog.ping_due(21.0)


@pytest.mark.parametrize("phase", [ManagerPhase.STOPPING, ManagerPhase.INTERRUPTING])
def test_watchdog_ignores_services_while_stopping(phase: ManagerPhase) -> None:
    watchdog = Watchdog(2.0)
    watchdog.observe(manager(service("web", 0, 2)), 10.0)

    watchdog.observe(manager(service("web", 0, 2), phase=phase), 11.0)

    assert watchdog.ping_due(30.0)


def test_watchdog_ignores_service_without_workers() -> None:
    watchdog = Watchdog(2.0)
    watchdog.observe(manager(service("web", 0, 0)), 10.0)

    assert watchdog.ping_due(30.0)


@pytest.mark.parametrize("state", [ServiceState.GIVEN_UP, ServiceState.FINISHED])
def test_watchdog_ignores_ended_services(state: ServiceState) -> None:
    watchdog = Watchdog(2.0)
    mail = service("mail", 1, 1, pid=2000)
    watchdog.observe(manager(service("web", 0, 2), mail), 10.0)

    watchdog.observe(manager(service("web", 0, 2, service_state=state), mail), 11.0)
    watchdog.observe(manager(service("web", 0, 2, service_state=state), mail), 30.0)

    assert watchdog.failing_services(30.0) == []
    assert watchdog.ping_due(30.0)


def test_watchdog_rejects_zero_timeout() -> None:
    with pytest.raises(ValueError, match="> 0"):
        Watchdog(0)


def test_watchdog_next_ping_counts_from_last_ping() -> None:
    watchdog = Watchdog(4.0)
    watchdog.pinged(10.0)

    assert watchdog.next_ping_in(11.7) == pytest.approx(0.3)
    assert watchdog.next_ping_in(12.5) == 0.0


def test_watchdog_next_ping_waits_while_down() -> None:
    watchdog = Watchdog(2.0)
    watchdog.pinged(9.0)
    watchdog.observe(manager(service("web", 0, 2)), 10.0)

    assert watchdog.next_ping_in(12.5) == 1.0
