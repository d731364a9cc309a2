"""Taking the systemd variables out of an environment, and reading them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cotyledon_systemd import SYSTEMD_VARIABLES
from cotyledon_systemd import SystemdEnvironment
from cotyledon_systemd import take_environment

PID = 4242
PARENT_PID = 4000


def _environment(**variables: str) -> SystemdEnvironment:
    return SystemdEnvironment(variables, PID, PARENT_PID)


def test_take_environment_removes_systemd_variables() -> None:
    environ = dict.fromkeys(SYSTEMD_VARIABLES, "1")
    environ["PATH"] = "/usr/bin"

    taken = take_environment(environ, PID)

    assert environ == {"PATH": "/usr/bin"}
    assert dict(taken.variables) == dict.fromkeys(SYSTEMD_VARIABLES, "1")
    assert taken.pid == PID


def test_take_environment_without_variables_is_empty() -> None:
    taken = take_environment({"PATH": "/usr/bin"}, PID)

    assert taken.notify_socket is None
    assert taken.watchdog_usec() is None
    assert taken.listen_fds() == []


def test_watchdog_applies_without_watchdog_pid() -> None:
    assert _environment(WATCHDOG_USEC="2000000").watchdog_usec() == 2_000_000


def test_watchdog_applies_to_own_pid() -> None:
    env = _environment(WATCHDOG_USEC="2000000", WATCHDOG_PID=str(PID))

    assert env.watchdog_usec() == 2_000_000


def test_watchdog_for_wrapper_is_taken_over() -> None:
    # The master sends MAINPID= for the wrapper that started it.
    env = _environment(WATCHDOG_USEC="2000000", WATCHDOG_PID=str(PARENT_PID))

    assert env.started_pid == PARENT_PID
    assert env.started_by_wrapper
    assert env.watchdog_usec() == 2_000_000


def test_watchdog_for_other_pid_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    env = _environment(
        WATCHDOG_USEC="2000000", WATCHDOG_PID=str(PARENT_PID), LISTEN_PID=str(PARENT_PID + 1)
    )

    assert env.watchdog_usec() is None
    assert f"set for pid {PARENT_PID}" in caplog.text


def test_watchdog_for_unrelated_pid_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    # Only the parent can be the wrapper that systemd started: variables
    # inherited from another unit's process apply to that process.
    env = _environment(WATCHDOG_USEC="2000000", WATCHDOG_PID="1")

    assert not env.started_by_wrapper
    assert env.watchdog_usec() is None
    assert "set for pid 1, not for this process" in caplog.text


def test_watchdog_with_unknown_parent_is_ignored() -> None:
    env = SystemdEnvironment({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"}, PID)

    assert env.watchdog_usec() is None


@pytest.mark.parametrize("value", ["0", "-5", "2s", "", "²"])
def test_watchdog_rejects_invalid_timeout(value: str) -> None:
    assert _environment(WATCHDOG_USEC=value).watchdog_usec() is None


def test_listen_fds_are_named_in_order() -> None:
    env = _environment(LISTEN_FDS="3", LISTEN_PID=str(PID), LISTEN_FDNAMES="web:web:admin")

    assert env.listen_fds() == [(3, "web"), (4, "web"), (5, "admin")]


def test_listen_fds_without_names_are_unknown() -> None:
    env = _environment(LISTEN_FDS="2", LISTEN_PID=str(PID))

    assert env.listen_fds() == [(3, "unknown"), (4, "unknown")]


def test_listen_fds_for_other_pid_ignored(caplog: pytest.LogCaptureFixture) -> None:
    env = _environment(LISTEN_FDS="1", LISTEN_PID="1")

    assert env.listen_fds() == []
    assert f"LISTEN_PID=1 is not this process (pid {PID})" in caplog.text
    assert "call systemd_environment() in the master" in caplog.text


def test_listen_fds_with_wrong_name_count() -> None:
    env = _environment(LISTEN_FDS="2", LISTEN_PID=str(PID), LISTEN_FDNAMES="web")

    assert env.listen_fds() == [(3, "unknown"), (4, "unknown")]


def test_listen_fds_beyond_kernel_limit_ignored(caplog: pytest.LogCaptureFixture) -> None:
    # No process can have that many descriptors, so the count is invalid,
    # and a list of that many names would not fit in memory.
    env = _environment(LISTEN_FDS=str(10**12), LISTEN_PID=str(PID))

    assert env.listen_fds() == []
    assert f"Ignoring invalid LISTEN_FDS={10**12}" in caplog.text


def test_started_pid_comes_from_listen_pid() -> None:
    env = _environment(LISTEN_PID="77", WATCHDOG_PID="88")

    assert env.started_pid == 77


def test_started_pid_unknown_without_variables() -> None:
    assert _environment(NOTIFY_SOCKET="/run/notify").started_pid is None


def _run_with_descriptor_3(body: str, **variables: str) -> subprocess.CompletedProcess[str]:
    """Run ``body`` in a new interpreter, with ``variables`` added to its
    environment. As systemd does for a socket, the interpreter gets the
    read end of a pipe at descriptor 3, inheritable, and LISTEN_PID set to
    its own pid."""
    read_end, write_end = os.pipe()
    program = (
        "import logging, os, sys, cotyledon_systemd\n"
        "os.dup2(int(sys.argv[1]), 3)\n"
        "os.environ['LISTEN_PID'] = str(os.getpid())\n" + body
    )
    try:
        return subprocess.run(
            [sys.executable, "-c", program, str(read_end)],
            env={**os.environ, **variables},
            pass_fds=(read_end,),
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    finally:
        os.close(read_end)
        os.close(write_end)


def test_systemd_environment_sets_close_on_exec() -> None:
    result = _run_with_descriptor_3(
        "before = os.get_inheritable(3)\n"
        "cotyledon_systemd.systemd_environment()\n"
        "print(before, os.get_inheritable(3))\n",
        LISTEN_FDS="1",
        LISTEN_FDNAMES="web",
    )

    assert result.stdout.split() == ["True", "False"]


def test_descriptors_not_open_get_one_warning() -> None:
    # LISTEN_FDS counts 2000 descriptors, but only descriptor 3 and a few
    # that the interpreter opened are open.
    result = _run_with_descriptor_3(
        "logging.basicConfig(format='%(levelname)s %(message)s')\n"
        "print(cotyledon_systemd.listen_fds()['unknown'][0])\n",
        LISTEN_FDS="2000",
    )

    assert result.stdout.strip() == "3"
    [warning] = result.stderr.splitlines()
    assert warning.startswith("WARNING ")
    assert "of the 2000 descriptors that LISTEN_FDS passed are not open: 4-" in warning
