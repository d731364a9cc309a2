"""The example run as a user runs it: ``python -m httpservice``, then signals.

The load, the reloads and the kills under load are in the reliability
suite (``packages/cotyledon-core/tests/reliability/test_http_load.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from cotyledon_testkit import live_processes_of_session

HERE = Path(__file__).resolve().parent
TIMEOUT = 15.0
POLL = 0.02

T = TypeVar("T")


class Service:
    """A running ``python -m httpservice`` in a session of its own."""

    def __init__(self, process: subprocess.Popen[bytes], port_file: Path, log: Path) -> None:
        self.process = process
        self.port_file = port_file
        self.log = log
        self.port = 0

    def wait_until(self, description: str, check: Callable[[], T | None]) -> T:
        deadline = time.monotonic() + TIMEOUT
        while True:
            value = check()
            if value is not None:
                return value
            assert self.process.poll() is None, (
                f"exited while waiting for {description}\n{self.output()}"
            )
            assert time.monotonic() < deadline, (
                f"timed out waiting for {description}\n{self.output()}"
            )
            time.sleep(POLL)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def get(self, path: str) -> tuple[int, bytes]:
        """Send GET ``path`` to the service on 127.0.0.1; return status and body."""
        url = f"http://127.0.0.1:{self.port}{path}"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def label(self) -> str:
        status, body = self.get("/")
        assert status == 200, body
        return str(json.loads(body)["label"])

    def kill_session(self) -> None:
        """Kill the master and everything it started (its session)."""
        for member in live_processes_of_session(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(member.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(TIMEOUT)


def _write_config(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    config = tmp_path / "config.json"
    _write_config(config, '{"label": "blue"}')
    port_file = tmp_path / "port"
    log = tmp_path / "service.log"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "httpservice", "--port", "0", "--workers", "2"]
    command += ["--config", str(config), "--port-file", str(port_file)]
    with open(log, "wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    running = Service(process, port_file, log)
    try:
        running.port = running.wait_until(
            "the port file", lambda: int(port_file.read_text()) if port_file.exists() else None
        )
        yield running
    finally:
        running.kill_session()


def test_httpservice_serves_and_reloads(service: Service, tmp_path: Path) -> None:
    config = tmp_path / "config.json"

    assert service.label() == "blue"
    assert service.get("/missing")[0] == 404
    assert service.get("/?delay_ms=5000")[0] == 400
    assert service.get("/?delay_ms=soon")[0] == 400

    _write_config(config, "{not json")
    service.process.send_signal(signal.SIGHUP)
    service.wait_until(
        "the reload to be cancelled", lambda: "cancelled the reload" in service.output() or None
    )
    assert service.label() == "blue"

    _write_config(config, '{"label": "green"}')
    service.process.send_signal(signal.SIGHUP)
    service.wait_until("a response with the new label", lambda: service.label() == "green" or None)
    service.process.send_signal(signal.SIGTERM)
    status = service.process.wait(TIMEOUT)

    assert status == 0, service.output()
    assert "master exiting with status 0" in service.output()
