"""A real systemd, PID 1 of private namespaces, as a peer for tests.

``Sandbox(directory).start()`` runs ``/lib/systemd/systemd`` as PID 1 of
new pid, mount, UTS and cgroup namespaces, in a cgroup of its own. Inside,
``/run`` is a tmpfs, ``/sys`` and ``/proc/sys`` are read-only, and a pty is
``/dev/console`` (systemd wants a tty there). The bounding set has no
module loading, clock setting or reboot. Units go in ``sandbox.units``;
``sandbox.systemctl(...)`` runs systemctl inside.

Rules that keep the machine safe:

- The unit search path is the sandbox's own folder only. The machine's
  units would pull in systemd-tmpfiles-setup, which empties ``/tmp``, and
  ``/tmp`` is shared with the machine.
- Never ``systemctl enable``: it writes to the machine's ``/etc``.
- There is no journal: units log to files (``StandardOutput=append:``).
- The network namespace is the machine's: ports bound in the sandbox can
  collide with others.
- ``ExecStart=`` names an absolute interpreter path.

``fetch_systemd(directory)`` downloads a newer systemd from Debian's
backports (with an apt state of its own, leaving the machine's apt alone)
for ``Sandbox(directory, overlay=...)``, which mounts it over the
machine's systemd inside the sandbox only.

Needs Linux, root, util-linux (unshare, nsenter, setpriv) and a cgroup2
hierarchy. As a command, for a look by hand::

    python sdsandbox.py DIRECTORY start|stop|status|ctl ARGS...|fetch
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import select
import shutil
import subprocess
import sys
import termios
import time
import tty
import uuid
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Final
from typing import final

SYSTEMD: Final = Path("/lib/systemd/systemd")
START_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0
COMMAND_TIMEOUT: Final = 30.0

# Capabilities that PID 1 of the sandbox and its services never get.
_DROPPED_CAPABILITIES: Final = (
    "sys_module",
    "sys_time",
    "sys_boot",
    "sys_rawio",
    "mac_admin",
    "mac_override",
    "syslog",
    "wake_alarm",
)
_EMPTY_TARGETS: Final = (
    "sysinit",
    "basic",
    "sockets",
    "timers",
    "paths",
    "slices",
    "local-fs",
    "network",
    "network-online",
    "multi-user",
)
# The units a manager needs to start and to exit, as the machine's own
# units would give them, without their dependencies.
_BASE_UNITS: Final = {
    "default.target": "[Unit]\nDescription=sandbox default target\nWants=sockets.target\n",
    "system.slice": (
        "[Unit]\nDescription=System Slice\nDefaultDependencies=no\nBefore=slices.target\n"
    ),
    "shutdown.target": (
        "[Unit]\nDescription=Shutdown\nDefaultDependencies=no\nRefuseManualStart=yes\n"
    ),
    "exit.target": (
        "[Unit]\nDescription=Exit the container\nDefaultDependencies=no\n"
        "Requires=systemd-exit.service\nAfter=systemd-exit.service\nAllowIsolate=yes\n"
    ),
    "systemd-exit.service": (
        "[Unit]\nDescription=Exit the container\nDefaultDependencies=no\n"
        "Requires=shutdown.target\nAfter=shutdown.target\nSuccessAction=exit-force\n"
    ),
}


# systemctl verbs that write unit links or overrides under /etc, which is
# the machine's.
_WRITES_ETC: Final = frozenset(
    {
        "enable",
        "reenable",
        "preset",
        "preset-all",
        "link",
        "mask",
        "unmask",
        "set-default",
        "edit",
        "revert",
        "add-wants",
        "add-requires",
        "set-property",
    }
)


class SandboxError(RuntimeError):
    """The sandbox could not start, or a command in it failed."""


def cgroup2_mount() -> Path | None:
    """Where the machine mounts its cgroup2 hierarchy, if it does."""
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return Path(fields[1])
    return None


def unavailable_reason() -> str | None:
    """Why a sandbox cannot run on this machine, or None if it can."""
    return next(_missing_requirements(), None)


def _missing_requirements() -> Iterator[str]:
    if not sys.platform.startswith("linux"):
        yield "the systemd sandbox needs Linux namespaces"
        return
    if os.geteuid() != 0:
        yield "the systemd sandbox needs root (namespaces, mounts, cgroups)"
    if not SYSTEMD.exists():
        yield f"{SYSTEMD} is missing: systemd is not installed"
    missing = [tool for tool in ("unshare", "nsenter", "setpriv") if shutil.which(tool) is None]
    if missing:
        yield f"the systemd sandbox needs util-linux's {', '.join(missing)}"
    if Path("/run/systemd/system").exists():
        # Its cgroup tree belongs to the machine's systemd, which the
        # sandbox must not touch.
        yield "this machine runs systemd as PID 1; the sandbox runs only where it does not"
    if cgroup2_mount() is None:
        yield "no cgroup2 hierarchy is mounted"


def systemd_version(systemctl: str = "systemctl") -> int:
    """The major version of the machine's systemd: ``systemd 252 (...)``."""
    output = subprocess.run(
        [systemctl, "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.match(r"systemd (\d+)", output)
    if match is None:
        raise SandboxError(f"cannot read the version of systemd from {output!r}")
    return int(match.group(1))


def _wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Wait for ``condition`` by checking it every 20 ms, for the states
    that no event signals: the sandbox's PID 1 and its sockets belong to
    processes that notify no one."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise SandboxError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


@final
class Sandbox:
    """A systemd running in ``directory``: units, logs and state files."""

    def __init__(
        self,
        directory: Path,
        *,
        overlay: Path | None = None,
        log_level: str = "info",
    ) -> None:
        self.directory = directory
        self.units = directory / "units"
        self.logs = directory / "log"
        self.overlay = overlay
        self.log_level = log_level
        self._empty = directory / "empty"
        self._state = directory / "state"
        self.console_log = directory / "console.log"
        # The helper processes that this object started, to be reaped.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def __repr__(self) -> str:
        return f"<Sandbox {self.directory} pid1={self.pid1}>"

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # State kept in files, so that the command line finds a sandbox again.

    def _read(self, name: str) -> str | None:
        try:
            return (self._state / name).read_text().strip() or None
        except FileNotFoundError:
            return None

    def _write(self, name: str, value: str) -> None:
        self._state.mkdir(parents=True, exist_ok=True)
        (self._state / name).write_text(value)

    @property
    def pid1(self) -> int | None:
        """The machine's pid of the sandbox's PID 1, while it runs."""
        text = self._read("pid1")
        if text is None:
            return None
        pid = int(text)
        return pid if _alive(pid) else None

    @property
    def cgroup(self) -> Path:
        mount = cgroup2_mount()
        if mount is None:
            raise SandboxError("no cgroup2 hierarchy is mounted")
        name = self._read("cgroup")
        if name is None:
            name = f"cotyledon-sandbox-{uuid.uuid4().hex[:12]}"
            self._write("cgroup", name)
        return mount / name

    # Starting and stopping

    def start(self) -> Sandbox:
        """Start systemd and wait until it has reached its default target."""
        reason = unavailable_reason()
        if reason is not None:
            raise SandboxError(reason)
        if self.pid1 is not None:
            return self
        for folder in (self.units, self.logs, self._empty, self._state):
            folder.mkdir(parents=True, exist_ok=True)
        self._write_base_units()
        try:
            pty = self._start_console()
            self._start_pid1(pty)
            _wait_until(
                lambda: self.run_inside("test", "-S", "/run/systemd/private").returncode == 0,
                START_TIMEOUT,
                "systemd's private bus socket",
            )
            self._wait_booted()
        except SandboxError as exc:
            console = self.console_text()[-2000:]
            self.stop()
            raise SandboxError(f"{exc}\nconsole:\n{console}") from exc
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_booted(self) -> None:
        state = self.systemctl("is-system-running", "--wait", check=False).stdout.strip()
        if state not in ("running", "degraded"):
            raise SandboxError(f"systemd reached the state {state!r}")

    def stop(self) -> None:
        """Stop systemd and every process of the sandbox; remove its cgroup."""
        pid1 = self.pid1
        if pid1 is not None:
            self.systemctl("--no-block", "exit", check=False)
            if not _wait_exit(pid1, STOP_TIMEOUT):
                # The whole pid namespace dies with its PID 1.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid1, 9)
                _wait_exit(pid1, STOP_TIMEOUT)
        for name in ("unshare", "console"):
            text = self._read(name)
            if text is None:
                continue
            pid = int(text)
            if name == "console":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 15)
            _wait_exit(pid, STOP_TIMEOUT)
            child = self._children.pop(name, None)
            if child is not None:
                child.wait(STOP_TIMEOUT)
        if self._read("cgroup") is not None:
            cgroup = self.cgroup
            if cgroup.exists():
                # Deepest first: a cgroup is removed once it has no children.
                for path in sorted(cgroup.rglob("*"), key=lambda p: len(p.parts), reverse=True):
                    if path.is_dir():
                        with contextlib.suppress(OSError):
                            path.rmdir()
                with contextlib.suppress(OSError):
                    cgroup.rmdir()
            if cgroup.exists():
                raise SandboxError(f"the cgroup {cgroup} is still there")
        for name in ("pid1", "unshare", "console", "pty", "cgroup"):
            with contextlib.suppress(FileNotFoundError):
                (self._state / name).unlink()

    def _write_base_units(self) -> None:
        for target in _EMPTY_TARGETS:
            unit = self.units / f"{target}.target"
            if not unit.exists():
                unit.write_text(f"[Unit]\nDescription=sandbox {target} (empty)\n")
        for name, text in _BASE_UNITS.items():
            unit = self.units / name
            if not unit.exists():
                unit.write_text(text)

    def _start_console(self) -> str:
        """Start the process that keeps the pty of ``/dev/console`` open and
        copies what systemd writes there to ``console.log``."""
        pty_file = self._state / "pty"
        with contextlib.suppress(FileNotFoundError):
            pty_file.unlink()
        self.console_log.write_bytes(b"")
        console = subprocess.Popen(
            [sys.executable, __file__, str(self.directory), "console"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._children["console"] = console
        self._write("console", str(console.pid))
        _wait_until(pty_file.exists, START_TIMEOUT, "the console pty")
        return pty_file.read_text()

    def _start_pid1(self, pty: str) -> None:
        inner = self._state / "inner.sh"
        inner.write_text(self._inner_script(pty))
        cgroup = self.cgroup
        cgroup.mkdir(exist_ok=True)
        with (self.directory / "unshare.log").open("wb") as log:
            unshare = subprocess.Popen(
                [
                    "sh",
                    "-c",
                    'echo $$ > "$1/cgroup.procs" && shift && exec "$@"',
                    "sh",
                    str(cgroup),
                    "unshare",
                    "--pid",
                    "--fork",
                    "--mount",
                    "--uts",
                    "--cgroup",
                    "--propagation",
                    "private",
                    "--mount-proc",
                    "--",
                    "sh",
                    str(inner),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._children["unshare"] = unshare
        self._write("unshare", str(unshare.pid))
        children = Path(f"/proc/{unshare.pid}/task/{unshare.pid}/children")

        def child_started() -> bool:
            if unshare.poll() is not None:
                raise SandboxError(
                    f"unshare exited with status {unshare.returncode}: "
                    + (self.directory / "unshare.log").read_text(errors="replace")
                )
            return bool(children.exists() and children.read_text().split())

        _wait_until(child_started, START_TIMEOUT, "the sandbox's PID 1")
        self._write("pid1", children.read_text().split()[0])

    def _inner_script(self, pty: str) -> str:
        """The commands run as PID 1 of the new namespaces, before systemd."""
        lines = [
            "set -e",
            "mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run",
            "mount --bind /sys /sys",
            "mount -o remount,bind,ro,nosuid,nodev,noexec /sys",
            "mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup",
            "mount --bind /proc/sys /proc/sys",
            "mount -o remount,bind,ro /proc/sys",
            "if [ -e /proc/sysrq-trigger ]; then",
            "  mount --bind /proc/sysrq-trigger /proc/sysrq-trigger",
            "  mount -o remount,bind,ro /proc/sysrq-trigger",
            "fi",
            f"mount --bind {pty} /dev/console",
        ]
        if self.overlay is not None:
            overlay = self.overlay
            lines += [
                f"OV={overlay}",
                'mount --bind "$OV/lib/systemd" /usr/lib/systemd',
                'for d in "$OV"/usr/lib/*-linux-gnu/systemd; do',
                '  mount --bind "$d" "/usr/lib/${d#"$OV"/usr/lib/}"',
                "done",
                'for f in "$OV"/usr/lib/*-linux-gnu/libsystemd.so.0.*; do',
                '  lib=$(dirname "${f#"$OV"}")/libsystemd.so.0',
                '  mount --bind "$f" "$lib"',
                "done",
                'for f in "$OV"/bin/* "$OV"/usr/bin/*; do',
                '  if [ -f "$f" ] && [ -e "/usr/bin/${f##*/}" ]; then',
                '    mount --bind "$f" "/usr/bin/${f##*/}"',
                "  fi",
                "done",
            ]
        dropped = ",".join(f"-{capability}" for capability in _DROPPED_CAPABILITIES)
        lines += [
            "mkdir -p /run/systemd",
            "echo cotyledon-sandbox > /run/systemd/container",
            "hostname cotyledon-sandbox",
            f"exec setpriv --bounding-set {dropped} -- env -i container=cotyledon-sandbox"
            " PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
            f" SYSTEMD_UNIT_PATH={self.units}"
            f" SYSTEMD_GENERATOR_PATH={self._empty}"
            f" SYSTEMD_ENVIRONMENT_GENERATOR_PATH={self._empty}"
            f" {SYSTEMD} --log-target=console --log-level={self.log_level} --show-status=no",
        ]
        return "\n".join(lines) + "\n"

    # Commands inside

    def run_inside(
        self, *command: str, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` in the sandbox's namespaces; return its result."""
        pid1 = self.pid1
        if pid1 is None:
            raise SandboxError(f"{self!r} is not running")
        return subprocess.run(
            ["nsenter", f"--target={pid1}", "--mount", "--pid", "--uts", "--cgroup", *command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def systemctl(
        self, *args: str, check: bool = True, timeout: float = COMMAND_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run ``systemctl ARGS`` inside the sandbox.

        Raise ``SandboxError`` for a verb that writes under ``/etc``, and,
        with ``check``, when systemctl fails.
        """
        writing = _WRITES_ETC.intersection(args)
        if writing:
            raise SandboxError(
                f"systemctl {' '.join(sorted(writing))} writes to the machine's /etc; never use it"
            )
        result = self.run_inside("systemctl", *args, timeout=timeout)
        if check and result.returncode != 0:
            raise SandboxError(
                f"systemctl {' '.join(args)} exited with status {result.returncode}: "
                f"{result.stderr.strip()}"
            )
        return result

    def show(self, unit: str, *properties: str) -> dict[str, str]:
        """Return the ``properties`` of a unit that ``systemctl show`` prints."""
        output = self.systemctl("show", unit, *(f"--property={p}" for p in properties)).stdout
        shown = {}
        for line in output.splitlines():
            key, _, value = line.partition("=")
            shown[key] = value
        return shown

    def install_unit(self, name: str, text: str) -> None:
        """Write a unit into the sandbox's unit folder and reload systemd."""
        (self.units / name).write_text(text)
        self.systemctl("daemon-reload")

    def console_text(self) -> str:
        return self.console_log.read_text(errors="replace").replace("\r", "")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # kill(0) succeeds for a zombie too: read its state.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _wait_exit(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (its pidfd becomes readable); True if it has."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], timeout)
    finally:
        os.close(pidfd)
    return bool(readable) or not _alive(pid)


# The newer systemd for the sandbox


def fetch_systemd(directory: Path) -> Path:
    """Download and unpack systemd from Debian's backports of this release.

    Returns the folder to pass as ``overlay``. apt runs with a state,
    cache and sources of its own under ``directory`` and reads only the
    machine's dpkg status, so the machine's apt configuration and packages
    stay as they are. A second call reuses what the first unpacked.
    Raises ``SandboxError`` when the download is not possible.
    """
    directory.mkdir(parents=True, exist_ok=True)
    root = directory / "root"
    with _locked(directory / "lock"):
        if (root / "lib/systemd/systemd").exists():
            return root
        release = _os_release().get("VERSION_CODENAME")
        mirror = _debian_mirror()
        if release is None or mirror is None or shutil.which("apt-get") is None:
            raise SandboxError("not a Debian machine with apt sources: no backports to fetch")
        for folder in ("state/lists/partial", "cache/archives/partial", "etc", "debs"):
            (directory / folder).mkdir(parents=True, exist_ok=True)
        sources = directory / "etc/sources.list"
        sources.write_text(
            f"deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} "
            f"{release}-backports main\n"
        )
        options = [
            f"-oDir::State={directory / 'state'}",
            "-oDir::State::status=/var/lib/dpkg/status",
            f"-oDir::Cache={directory / 'cache'}",
            f"-oDir::Etc::SourceList={sources}",
            "-oDir::Etc::SourceParts=/nonexistent",
            f"-oDir::Etc::PreferencesParts={directory / 'etc'}",
        ]
        _run(["apt-get", *options, "update"])
        madison = _run(["apt-cache", *options, "madison", "systemd"])
        versions = [
            line.split("|")[1].strip()
            for line in madison.splitlines()
            if "backports" in line and line.count("|") >= 2
        ]
        if not versions:
            raise SandboxError(f"no systemd in {release}-backports")
        version = versions[0]
        packages = [f"{name}={version}" for name in ("systemd", "libsystemd-shared", "libsystemd0")]
        _run(["apt-get", *options, "download", *packages], cwd=directory / "debs")
        unpacked = directory / "root.new"
        shutil.rmtree(unpacked, ignore_errors=True)
        unpacked.mkdir()
        for deb in sorted((directory / "debs").glob("*.deb")):
            if version.replace(":", "%3a") in deb.name:
                _run(["dpkg", "-x", str(deb), str(unpacked)])
        unpacked.rename(root)
        return root


def _run(command: list[str], cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=300, check=False, cwd=cwd
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxError(f"{command[0]} failed: {exc}") from exc
    if result.returncode != 0:
        raise SandboxError(
            f"{' '.join(command[:1] + command[-2:])} exited with status {result.returncode}: "
            f"{result.stderr.strip()[-500:]}"
        )
    return result.stdout


def _os_release() -> dict[str, str]:
    values = {}
    with contextlib.suppress(FileNotFoundError):
        for line in Path("/etc/os-release").read_text().splitlines():
            key, _, value = line.partition("=")
            values[key] = value.strip('"')
    return values


def _debian_mirror() -> str | None:
    """The Debian mirror that this machine's apt sources name."""
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        for line in deb822.read_text().splitlines():
            if line.startswith("URIs:"):
                return line.split()[1]
    classic = Path("/etc/apt/sources.list")
    if classic.exists():
        for line in classic.read_text().splitlines():
            fields = line.split()
            if len(fields) > 1 and fields[0] == "deb":
                return next(f for f in fields[1:] if not f.startswith("["))
    return None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# The command line


def _console(directory: Path) -> None:
    """Hold a pty for ``/dev/console``; copy its output to console.log."""
    master, slave = os.openpty()
    # Raw: no newline translation, no echo back into systemd's output.
    tty.setraw(slave, termios.TCSANOW)
    state = directory / "state"
    (state / "pty.new").write_text(os.ttyname(slave))
    (state / "pty.new").rename(state / "pty")
    with (directory / "console.log").open("ab", buffering=0) as log:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                break
            if not data:
                break
            log.write(data)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    directory, command, *rest = Path(argv[0]), argv[1], *argv[2:]
    if command == "console":
        _console(directory)
        return 0
    if command == "fetch":
        print(fetch_systemd(directory))
        return 0
    sandbox = Sandbox(directory, overlay=Path(rest[0]) if command == "start" and rest else None)
    if command == "start":
        sandbox.start()
        print(f"systemd runs as pid {sandbox.pid1}; units in {sandbox.units}")
    elif command == "stop":
        sandbox.stop()
    elif command == "status":
        print("running" if sandbox.pid1 is not None else "not running")
    elif command == "ctl":
        result = sandbox.systemctl(*rest, check=False)
        print(result.stdout, end="")
        print(result.stderr, end="", file=sys.stderr)
        return result.returncode
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
