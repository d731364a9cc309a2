"""The variables that systemd sets for the process it starts.

systemd hands the process it starts a notification socket
(``NOTIFY_SOCKET``), a watchdog timeout (``WATCHDOG_USEC``,
``WATCHDOG_PID``) and socket-activated descriptors (``LISTEN_FDS``,
``LISTEN_PID``, ``LISTEN_FDNAMES``). They are meant for that process, the
master, which takes them out of ``os.environ`` before any worker starts.
Workers then never inherit them, whatever the start method: fork copies
the environment, and spawn and forkserver start from the master's
environment at that time. Programs that the workers run do not get them
either.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
from collections.abc import Mapping
from collections.abc import MutableMapping
from typing import Final

from cotyledon_systemd._entry_point import SYSTEMD_VARIABLES
from cotyledon_systemd._entry_point import pid_without_variables
from cotyledon_systemd._notify import NOTIFY_SOCKET_ENV

LOG = logging.getLogger(__name__)

LISTEN_FDS_START: Final = 3
"""sd_listen_fds(3): "The first file descriptor may be found at file
descriptor number 3 (i.e. SD_LISTEN_FDS_START), the remaining descriptors
follow at 4, 5, 6, ..., if any." """

NR_OPEN_PATH: Final = "/proc/sys/fs/nr_open"
"""The kernel's limit on the descriptors of one process: no descriptor
number reaches it."""

DEFAULT_NR_OPEN: Final = 1 << 20
"""The kernel's default ``fs.nr_open``, for when ``NR_OPEN_PATH`` cannot be
read."""

UNKNOWN_FD_NAME: Final = "unknown"
"""sd_listen_fds(3), special names: "unknown": "The process received no
name for the specific file descriptor from the service manager." """


@dataclasses.dataclass(frozen=True)
class SystemdEnvironment:
    """The systemd variables that one process found in its environment."""

    variables: Mapping[str, str]
    """The variables of ``SYSTEMD_VARIABLES`` that were set, as found."""
    pid: int
    """The process that took them: the master."""
    parent_pid: int | None = None
    """The parent of ``pid`` when it took them, which systemd may have started
    in its place (a wrapper that forks the master); None if unknown."""

    @property
    def notify_socket(self) -> str | None:
        return self.variables.get(NOTIFY_SOCKET_ENV)

    @property
    def started_pid(self) -> int | None:
        """The pid that systemd started, as ``LISTEN_PID`` or
        ``WATCHDOG_PID`` gives it: systemd sets both to that pid."""
        for name in ("LISTEN_PID", "WATCHDOG_PID"):
            pid = _positive_int(self.variables.get(name))
            if pid is not None:
                return pid
        return None

    @property
    def started_by_wrapper(self) -> bool:
        """Whether systemd started the parent of ``pid``, which forked it,
        rather than ``pid`` itself."""
        started = self.started_pid
        return started is not None and started != self.pid and started == self.parent_pid

    def watchdog_usec(self) -> int | None:
        """Return the watchdog timeout in microseconds, or None when it does
        not apply to ``pid``.

        sd_watchdog_enabled(3): "If the $WATCHDOG_USEC environment variable
        is set, and the $WATCHDOG_PID variable is unset or set to the PID of
        the current process, the service manager expects notifications from
        this process." It also applies when ``WATCHDOG_PID`` names the
        parent that systemd started and that started this process, because
        the master then sends ``MAINPID=`` and becomes the main process.
        """
        raw = self.variables.get("WATCHDOG_USEC")
        if raw is None:
            return None
        usec = _positive_int(raw)
        if usec is None:
            LOG.warning("Ignoring WATCHDOG_USEC=%r: not a positive number", raw)
            return None
        raw_pid = self.variables.get("WATCHDOG_PID")
        watchdog_pid = _positive_int(raw_pid)
        if (
            watchdog_pid is not None
            and watchdog_pid == self.started_pid
            and self.started_by_wrapper
        ):
            # systemd started a wrapper that forked this master, which then
            # sends MAINPID= with READY=1 (see SystemdListener). systemd then
            # counts the master as the main process, the one that must ping.
            LOG.info(
                "The systemd watchdog is set for pid %d, which started this master "
                "(pid %d): the master takes it over with MAINPID= and pings",
                watchdog_pid,
                self.pid,
            )
            return usec
        if raw_pid is not None and watchdog_pid != self.pid:
            # sd_watchdog_enabled(3): "The call will ignore these variables
            # if $WATCHDOG_PID does not contain the PID of the current
            # process, under the assumption that in that case, the variables
            # were set for a different process further up the process tree."
            LOG.warning(
                "The systemd watchdog is set for pid %s, not for this process (pid %d): "
                "no watchdog pings",
                raw_pid,
                self.pid,
            )
            return None
        return usec

    def listen_fds(self) -> list[tuple[int, str]]:
        """Return the passed descriptors with their names, when they are
        ``pid``'s.

        sd_listen_fds(3): "Internally, sd_listen_fds() checks whether the
        $LISTEN_PID environment variable equals the daemon PID. If not, it
        returns immediately."
        """
        raw_count = self.variables.get("LISTEN_FDS")
        if raw_count is None:
            return []
        raw_pid = self.variables.get("LISTEN_PID")
        if _positive_int(raw_pid) != self.pid:
            LOG.warning(
                "Ignoring LISTEN_FDS=%s: LISTEN_PID=%s is not this process (pid %d). A worker "
                "gets this when nothing took the variables in its master: call "
                "systemd_environment() in the master before run()",
                raw_count,
                raw_pid,
                self.pid,
            )
            return []
        count = _positive_int(raw_count)
        if count is None:
            LOG.warning("Ignoring LISTEN_FDS=%r: not a positive number", raw_count)
            return []
        limit = max_descriptors()
        if count > limit - LISTEN_FDS_START:
            # No process can have that many descriptors, so the count is
            # invalid. Taken as it is, it would cost a list entry and a system
            # call per descriptor.
            LOG.warning(
                "Ignoring invalid LISTEN_FDS=%d: a process has at most %d descriptors (fs.nr_open)",
                count,
                limit,
            )
            return []
        names = [UNKNOWN_FD_NAME] * count
        raw_names = self.variables.get("LISTEN_FDNAMES")
        if raw_names is not None:
            # sd_listen_fds(3): "This information is read from the
            # $LISTEN_FDNAMES variable, which may contain a colon-separated
            # list of names."
            given = raw_names.split(":")
            if len(given) == count:
                names = given
            else:
                LOG.warning(
                    "Ignoring LISTEN_FDNAMES=%r: %d names for LISTEN_FDS=%d descriptors",
                    raw_names,
                    len(given),
                    count,
                )
        return [(LISTEN_FDS_START + index, name) for index, name in enumerate(names)]


def take_environment(
    environ: MutableMapping[str, str] | None = None,
    pid: int | None = None,
    parent_pid: int | None = None,
) -> SystemdEnvironment:
    """Remove the systemd variables from ``environ`` and return them.

    ``environ`` is ``os.environ`` by default, and ``pid`` the calling
    process, whose parent is then ``parent_pid``. Removing a variable from
    ``os.environ`` also removes it from the environment that child
    processes get.
    """
    env = os.environ if environ is None else environ
    found = {name: env.pop(name) for name in SYSTEMD_VARIABLES if name in env}
    if pid is None:
        pid = os.getpid()
        parent_pid = os.getppid() if parent_pid is None else parent_pid
    return SystemdEnvironment(found, pid, parent_pid)


_lock = threading.Lock()
_taken: SystemdEnvironment | None = None


def systemd_environment() -> SystemdEnvironment:
    """Return the systemd variables of this program, taken from
    ``os.environ`` at the first call.

    Later calls return the same values, in forked workers too, which
    inherit the master's memory. The first call also marks the descriptors
    of ``LISTEN_FDS`` close-on-exec. Call it in the master before its workers
    start (the systemd listener does when the manager creates it, in
    ``run()``): a worker started by spawn or forkserver that calls it finds
    nothing.
    """
    global _taken  # noqa: PLW0603
    with _lock:
        if _taken is None:
            _taken = _found_by_entry_point()
        if _taken is None:
            _taken = take_environment()
            if _taken.variables:
                LOG.debug(
                    "Took %s from the environment of pid %d",
                    ", ".join(sorted(_taken.variables)),
                    _taken.pid,
                )
            # Programs that the master or its workers run do not get the
            # passed descriptors; forked workers still do.
            close_passed_on_exec(_taken)
        return _taken


def taken_environment() -> SystemdEnvironment | None:
    """Return what ``systemd_environment()`` or the entry point took, or
    None before either looked. Unlike ``systemd_environment()``, it never
    takes anything."""
    global _taken  # noqa: PLW0603
    with _lock:
        if _taken is None:
            _taken = _found_by_entry_point()
        return _taken


def _found_by_entry_point() -> SystemdEnvironment | None:
    """Return the empty environment for the process whose entry point found
    no systemd variable, or None.

    That entry point took nothing and left this module unimported. What it
    found counts as the first take of the process, so a variable set later
    is not taken either.
    """
    pid = pid_without_variables()
    return None if pid is None else SystemdEnvironment({}, pid)


def close_passed_on_exec(
    environment: SystemdEnvironment, *, warn: bool = True
) -> list[tuple[int, str]]:
    """Mark the passed descriptors close-on-exec and return those that are
    open, with their names. With ``warn``, those that are not open get one
    warning in all.

    sd_listen_fds(3): "This function call will set the FD_CLOEXEC flag for
    all passed file descriptors to avoid further inheritance to children
    of the calling process."
    """
    passed = environment.listen_fds()
    found = []
    missing = []
    for fd, name in passed:
        try:
            os.set_inheritable(fd, False)
        except OSError:
            missing.append(fd)
            continue
        found.append((fd, name))
    if missing and warn:
        LOG.warning(
            "%d of the %d descriptors that LISTEN_FDS passed are not open: %s",
            len(missing),
            len(passed),
            _describe_numbers(missing),
        )
    return found


def max_descriptors() -> int:
    """Return the kernel's limit on the descriptors of one process."""
    try:
        with open(NR_OPEN_PATH, encoding="ascii") as file:
            return int(file.read())
    except (OSError, ValueError):
        return DEFAULT_NR_OPEN


def _describe_numbers(numbers: list[int], max_ranges: int = 5) -> str:
    """Return sorted ``numbers`` as ranges, ``5, 7-9``, the first ``max_ranges`` of them."""
    ranges: list[list[int]] = []
    for number in numbers:
        if ranges and number == ranges[-1][1] + 1:
            ranges[-1][1] = number
        else:
            ranges.append([number, number])
    texts = [str(first) if first == last else f"{first}-{last}" for first, last in ranges]
    more = ", \u2026" if len(texts) > max_ranges else ""
    return ", ".join(texts[:max_ranges]) + more


def _positive_int(text: str | None) -> int | None:
    if text is None or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value > 0 else None
