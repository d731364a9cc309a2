"""The pytest plugin of cotyledon-testkit, registered as ``cotyledon``.

Besides its fixtures, it closes every ``ManagerProcess`` still open in
this process at the end of the session. That covers the harnesses that a
test started without the ``manager_process`` fixture and never closed, and
those that a teardown interrupted by a timeout left behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from cotyledon_testkit._clock import FakeClock
from cotyledon_testkit._harness import ManagerProcess
from cotyledon_testkit._harness import StartManager
from cotyledon_testkit._harness import close_all_managers
from cotyledon_testkit._notify import NotifyReceiver
from cotyledon_testkit._simulator import Simulator


@pytest.fixture
def fake_clock() -> FakeClock:
    """A ``FakeClock`` at time 0 that moves only when the test moves it.

    Pass ``fake_clock.now()`` to ``Supervisor.handle`` and move it with
    ``advance(seconds)`` or ``jump_to(step.deadline)``. The ``simulator``
    fixture runs on this clock. In a test that uses it, move time with
    ``simulator.advance()`` instead, because a move of the clock past a
    timer of the simulator makes its next call raise RuntimeError.
    """
    return FakeClock()


@pytest.fixture
def simulator(fake_clock: FakeClock) -> Simulator:
    """A ``Simulator`` on ``fake_clock``: a manager with fake workers and no process.

    Add services, start it, then drive it and check its log::

        simulator.add(MyService, workers=2)
        simulator.start()
        simulator.exit("MyService", 1, code=1)
        simulator.advance(1.0)
        assert simulator.restarts("MyService") == 1

    It uses the manager's default restart backoff, a 60 s graceful
    shutdown timeout and a jitter seeded with 0; build a ``Simulator``
    yourself to change them. Move time with ``simulator.advance()`` or
    ``run_until_idle()``: the simulator handles each timer at its own
    time, and raises RuntimeError if ``fake_clock`` was moved past one.
    """
    return Simulator(clock=fake_clock)


@pytest.fixture
def manager_process() -> Iterator[StartManager]:
    """A factory that starts a real manager in a fresh interpreter.

    Call it with an import string and the keyword arguments of
    ``ManagerProcess`` (``sys_path``, ``env``, ``cwd``, ``python``,
    ``log_level``); it returns the started harness. Annotate the fixture
    with ``StartManager`` for mypy to check those::

        manager = manager_process("myapp.main:run_manager", sys_path=[src])
        manager.wait_ready()

    Every process of every manager it started is killed at the end of the
    test, passed, failed or stopped by pytest-timeout (with its default
    ``signal`` method). If pytest itself dies, the kernel kills each
    manager (Linux), and their workers exit on their own.
    """
    started: list[ManagerProcess] = []

    def start(target: str, **kwargs: Any) -> ManagerProcess:
        harness = ManagerProcess(target, **kwargs)
        started.append(harness)
        return harness.start()

    try:
        yield start
    finally:
        errors: list[Exception] = []
        for harness in started:
            try:
                harness.close()
            except Exception as exc:
                errors.append(exc)
        if errors:
            raise errors[0]


@pytest.fixture
def notify_socket() -> Iterator[NotifyReceiver]:
    """A notification socket in systemd's place, bound in a temporary folder.

    Give the code under test its address as ``NOTIFY_SOCKET``, attach
    the harness so that the waits of either read both sockets, then wait
    for what it sends::

        manager = manager_process(target, env=notify_socket.environment())
        notify_socket.attach(manager)
        ready = notify_socket.wait_message(READY=1)
        assert ready.pid == manager.pid
        assert ready["STATUS"] == "web 4/4"

    Every message is kept in ``notify_socket.messages``, with the sender's
    pid, uid and gid; descriptors sent with a message are closed on
    receipt. The socket is closed at the end of the test.
    """
    with NotifyReceiver() as receiver:
        yield receiver


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Kill every manager that this process started and did not close."""
    close_all_managers()
