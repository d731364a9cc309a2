"""Sockets passed by systemd-socket-activate to a real manager's workers."""

from __future__ import annotations

import shutil
import socket
import sys
import time
from pathlib import Path

import pytest
from systemd_support import StartApp

from cotyledon_systemd import SYSTEMD_VARIABLES

SOCKET_ACTIVATE = shutil.which("systemd-socket-activate")

pytestmark = pytest.mark.skipif(
    SOCKET_ACTIVATE is None,
    reason="systemd-socket-activate is not installed (Debian package systemd)",
)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _activation_wrapper(directory: Path, port: int) -> Path:
    """A stand-in for the interpreter that the harness starts: it runs the
    interpreter under systemd-socket-activate, listening on ``port``.

    systemd-socket-activate passes only the variables named with ``-E`` to
    the program, so each variable of the harness's environment is named.
    """
    wrapper = directory / "python-activated"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        f"tool = {SOCKET_ACTIVATE!r}\n"
        f"args = [tool, '--listen=127.0.0.1:{port}', '--fdname=web']\n"
        "args += [f'--setenv={name}' for name in os.environ]\n"
        f"os.execv(tool, [*args, {sys.executable!r}, *sys.argv[1:]])\n"
    )
    wrapper.chmod(0o755)
    return wrapper


def _ask(port: int, timeout: float = 15.0) -> tuple[int, int]:
    """Connect to the manager on ``port``; return the worker id and pid
    that sent the reply.

    systemd-socket-activate binds the port in a process of its own, which
    tells no one when it listens: until then a connection is refused, and
    is tried again.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            connection = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)
            continue
        with connection:
            answer = connection.makefile().readline()
        break
    worker_id, pid = answer.split()
    return int(worker_id), int(pid)


def test_socket_activation_reaches_forked_workers(start_app: StartApp, tmp_path: Path) -> None:
    port = _free_port()
    app = start_app("socket_app", python=str(_activation_wrapper(tmp_path, port)))

    # systemd-socket-activate starts the manager on the first connection.
    first = _ask(port)
    app.wait_ready()
    second = _ask(port)
    sockets = app.wait_event("master_sockets")
    runs = app.wait_events("run", 2)

    workers = {pid for (_, _), pid in app.live_workers("echo").items()}
    assert {first[1], second[1]} <= workers
    assert app.pid not in workers
    assert sockets["names"] == {"web": 1}
    assert sockets["family"] == [True]
    # The master took the variables: its own environment no longer has them.
    assert sockets["env"] == dict.fromkeys(SYSTEMD_VARIABLES)
    assert [run["env"] for run in runs] == [dict.fromkeys(SYSTEMD_VARIABLES)] * 2
