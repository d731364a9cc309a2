"""Helpers of the sandbox tests: units of test managers, and their events."""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Callable
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from typing import final

from sdsandbox import Sandbox

from cotyledon_testkit import EventChannel
from cotyledon_testkit import ProbeEvent
from cotyledon_testkit import WaitTimeoutError

HERE: Final = Path(__file__).parent
WAIT_TIMEOUT: Final = 30.0


@final
class Events:
    """The events that the managers in the sandbox report to the test."""

    def __init__(self, path: Path) -> None:
        self.channel = EventChannel(str(path))

    @property
    def events(self) -> list[ProbeEvent]:
        return self.channel.events

    def wait(
        self,
        kind: str,
        timeout: float = WAIT_TIMEOUT,
        *,
        after: int = 0,
        where: Callable[[ProbeEvent], bool] = lambda event: True,
    ) -> ProbeEvent:
        """Wait for an event of ``kind`` from index ``after`` on."""
        return self.wait_count(kind, 1, timeout, after=after, where=where)[0]

    def wait_count(
        self,
        kind: str,
        count: int,
        timeout: float = WAIT_TIMEOUT,
        *,
        after: int = 0,
        where: Callable[[ProbeEvent], bool] = lambda event: True,
    ) -> list[ProbeEvent]:
        """Wait until ``count`` events of ``kind`` have come; return them."""
        deadline = time.monotonic() + timeout
        while True:
            self.channel.receive()
            found = [e for e in self.events[after:] if e.kind == kind and where(e)]
            if len(found) >= count:
                return found[:count]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                recent = "\n".join(f"  {e.kind} pid={e.pid} {e.fields}" for e in self.events[-20:])
                raise WaitTimeoutError(
                    f"timed out after {timeout} s waiting for {count} events {kind}; "
                    f"last events:\n{recent or '  (none)'}"
                )
            select.select([self.channel], [], [], remaining)

    def close(self) -> None:
        self.channel.close()


def service_unit(
    sandbox: Sandbox,
    name: str,
    app: str,
    channel: Path,
    *,
    settings: str = "",
    sys_path: Sequence[Path] = (),
    **env: str,
) -> str:
    """A unit that runs ``sandbox_apps:APP``, or ``APP`` if it is a
    ``module:function`` found on ``sys_path``, with this test's interpreter."""
    target = app if ":" in app else f"sandbox_apps:{app}"
    python_path = ":".join([str(HERE), *map(str, sys_path)])
    environment = {"PYTHONPATH": python_path, "COTYLEDON_TESTKIT_CHANNEL": str(channel), **env}
    lines = [
        "[Unit]",
        f"Description=cotyledon test manager {app}",
        "",
        "[Service]",
        f"ExecStart={sys.executable} -m cotyledon_testkit._launch {target}",
        *(f"Environment={key}={value}" for key, value in environment.items()),
        f"StandardOutput=append:{sandbox.logs / name}.log",
        "StandardError=inherit",
        # A core dump would go to the machine's disk: the SIGABRT of a
        # watchdog timeout must leave none.
        "LimitCORE=0",
        "TimeoutStartSec=30",
        "TimeoutStopSec=10",
        settings,
    ]
    return "\n".join(lines) + "\n"


@final
class Services:
    """The units that one test installs in the sandbox, and their events.

    ``close()`` stops every unit before it closes the event channel, which
    the managers would otherwise fail to report to.
    """

    def __init__(self, sandbox: Sandbox, directory: Path) -> None:
        self.sandbox = sandbox
        self.channel_path = directory / "events.sock"
        self.events = Events(self.channel_path)
        self._units: list[str] = []

    def install(
        self,
        name: str,
        app: str,
        *,
        settings: str = "",
        sys_path: Sequence[Path] = (),
        **env: str,
    ) -> str:
        """Install ``NAME.service`` running ``app`` (see ``service_unit``);
        return the unit's name."""
        unit = f"{name}.service"
        text = service_unit(
            self.sandbox,
            name,
            app,
            self.channel_path,
            settings=settings,
            sys_path=sys_path,
            **env,
        )
        self.sandbox.install_unit(unit, text)
        self._units.append(unit)
        return unit

    def console(self, unit: str) -> list[str]:
        """Return the messages that systemd wrote to its console about
        ``unit``, without the ``UNIT: `` prefix."""
        prefix = f"{unit}: "
        return [
            line.removeprefix(prefix)
            for line in self.sandbox.console_text().splitlines()
            if line.startswith(prefix)
        ]

    def wait_console(self, unit: str, message: str, timeout: float = WAIT_TIMEOUT) -> list[str]:
        """Wait until systemd has written ``message`` about ``unit`` to its
        console; return the unit's console messages (see ``console``)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = self.console(unit)
            if message in messages:
                return messages
            if time.monotonic() > deadline:
                recent = "\n".join(f"  {line}" for line in messages[-20:])
                raise WaitTimeoutError(
                    f"timed out after {timeout} s waiting for {message!r} from {unit} "
                    f"on systemd's console; its last messages:\n{recent or '  (none)'}"
                )
            # No event signals a write to the console file, so read it again shortly.
            time.sleep(0.02)

    def log(self, unit: str) -> str:
        path = self.sandbox.logs / f"{unit.removesuffix('.service')}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for unit in self._units:
            self.sandbox.systemctl("stop", unit, check=False)
            self.sandbox.systemctl("reset-failed", unit, check=False)
            (self.sandbox.units / unit).unlink(missing_ok=True)
        self.events.close()
