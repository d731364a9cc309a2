"""The lifecycle listener that reports a manager to systemd.

What it sends, from the master's loop:

- ``READY=1`` once every initial worker is ready, and again once a reload
  is complete.
- ``RELOADING=1`` with ``MONOTONIC_USEC=`` when a reload starts, and
  ``STOPPING=1`` when the manager starts to stop.
- ``STATUS=``: workers ready per service, restarts, the services given
  up, the last unexpected worker exit. At most one ``STATUS``-only message
  goes per status interval, and the latest text wins. A give-up sends its
  text at once.
- ``WATCHDOG=1`` about every half ``WATCHDOG_USEC`` while healthy (see
  ``cotyledon_systemd._watchdog``), ``EXTEND_TIMEOUT_USEC=`` while a
  graceful stop runs within its deadline.
- ``MAINPID=`` with ``READY=1`` only when systemd started another process
  (``LISTEN_PID`` or ``WATCHDOG_PID`` names it) that then started this
  master: a wrapper that forks instead of exec'ing. In the usual case the
  master is the process systemd started and already tracks, and a pid is
  best left unsent: it is a pid of the sender's pid namespace, which is
  not systemd's when the manager runs in a container.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import ClassVar
from typing import Final
from typing import final

from cotyledon import LifecycleListener
from cotyledon import ManagerPhase
from cotyledon import ManagerStatus
from cotyledon import ReloadOutcome
from cotyledon import ServiceState
from cotyledon import SlotState
from cotyledon import WorkerEvent
from cotyledon import WorkerEventKind
from cotyledon.runtime import describe_exit
from cotyledon_systemd._backlog import LifecycleBacklog
from cotyledon_systemd._environment import SystemdEnvironment
from cotyledon_systemd._environment import systemd_environment
from cotyledon_systemd._notify import FieldValue
from cotyledon_systemd._notify import Notifier
from cotyledon_systemd._watchdog import MIN_PING_INTERVAL
from cotyledon_systemd._watchdog import Watchdog

LOG = logging.getLogger(__name__)

STATUS_INTERVAL: Final = 1.0
"""Seconds between two ``STATUS``-only messages at most; a change within
that time is sent at the next liveness tick."""

MIN_STOP_EXTENSION: Final = 5.0
"""Seconds that each ``EXTEND_TIMEOUT_USEC=`` grants at least."""


MAX_STATUS_CHARS: Final = 1000
"""The maximum length of the status text, in characters. At 4 bytes of UTF-8 each, it
leaves room for the other fields under ``MAX_MESSAGE_BYTES``."""

MIN_TICK_INTERVAL: Final = 0.001
"""Seconds that ``liveness_interval()`` returns at least: the master
ignores an interval of 0, and a ping already due then goes at once."""

MAX_TICK_INTERVAL: Final = 3600.0
"""Seconds that ``liveness_interval()`` returns at most. epoll_wait(2)
takes its timeout in milliseconds as an int, so Python's selector rejects
a wait of more than about 24.8 days, and half a large ``WATCHDOG_USEC``
can be longer. A tick that comes early only checks whether a ping is due."""

# Slot states whose worker is still within its stop deadline while the
# manager stops: not yet asked to stop, starting, or asked and not killed.
_NOT_STOPPED_YET: Final = frozenset({SlotState.RUNNING, SlotState.SPAWNING})
"""Slot states of a stopping manager whose worker gets a stop deadline soon."""


@final
class SystemdListener(LifecycleListener):
    """Report the manager's lifecycle to systemd with sd_notify messages.

    ``environment`` defaults to the systemd variables of this process,
    taken out of ``os.environ`` on first use so that workers do not
    inherit them. ``notifier`` and ``clock`` (monotonic seconds) are there
    for tests.
    """

    # Set once a listener has been made by hand, to pass to a manager: the
    # entry point then adds none, in every later run() too.
    _created: ClassVar[bool] = False

    def __init__(
        self,
        environment: SystemdEnvironment | None = None,
        *,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.monotonic,
        status_interval: float = STATUS_INTERVAL,
    ) -> None:
        env = systemd_environment() if environment is None else environment
        # The master's loop must keep supervising, so its sends never wait
        # for room in systemd's queue: what fails is kept and sent again.
        self._notifier = (
            Notifier(env.notify_socket, send_timeout=0) if notifier is None else notifier
        )
        self._backlog = LifecycleBacklog()
        self._clock = clock
        self._status_interval = status_interval
        self._extension_ended = False
        usec = env.watchdog_usec()
        self._watchdog = None if usec is None else Watchdog(usec / 1_000_000)
        started = env.started_pid
        self._main_pid = env.pid if env.started_by_wrapper else None
        self._ready_sent = False
        # Set while a reload that sent RELOADING=1 runs: a reload that began
        # before the first READY=1 ends with no READY=1 of its own.
        self._reload_announced = False
        self._last_exit: str | None = None
        self._status_sent: str | None = None
        self._status_sent_at: float | None = None
        self._send_failing = False
        self._stopping = False
        self._status_pending = False
        SystemdListener._created = True
        if usec is not None and self._watchdog is not None and usec / 2e6 < MIN_PING_INTERVAL:
            LOG.warning(
                "WATCHDOG_USEC=%d is below %d: pinging every %g s instead of every half "
                "timeout, so systemd may kill the unit; set WatchdogSec= to 100ms or more",
                usec,
                round(2 * MIN_PING_INTERVAL * 1_000_000),
                MIN_PING_INTERVAL,
            )
        LOG.info(
            "Reporting to systemd through %s; watchdog %s",
            self._notifier.notify_socket,
            "off" if self._watchdog is None else f"every {self._watchdog.ping_interval:g} s",
        )
        if self._main_pid is not None:
            LOG.info(
                "systemd started pid %d, not this master (pid %d): READY=1 will carry "
                "MAINPID=%d, which systemd accepts with NotifyAccess=all",
                started,
                env.pid,
                env.pid,
            )
        elif started is not None and started != env.pid:
            # Not the parent either: the variables were set for another
            # process, and a MAINPID= would take its unit over.
            LOG.warning(
                "systemd's variables name pid %d, neither this master (pid %d) nor its "
                "parent (pid %s): no MAINPID=",
                started,
                env.pid,
                env.parent_pid,
            )

    def __repr__(self) -> str:
        return f"<SystemdListener {self._notifier.notify_socket!r} watchdog={self._watchdog}>"

    @property
    def watchdog(self) -> Watchdog | None:
        return self._watchdog

    # Lifecycle

    def on_ready(self, status: ManagerStatus) -> None:
        # sd_notify(3): "READY=1 Tells the service manager that service
        # startup is finished, or the service finished loading its
        # configuration."
        self._ready_sent = True
        fields: dict[str, FieldValue] = {"READY": 1}
        if self._main_pid is not None:
            # sd_notify(3): "MAINPID=... The main process ID (PID) of the
            # service, in case the service manager did not fork off the
            # process itself."
            fields["MAINPID"] = self._main_pid
        self._send(fields, status, with_status=True)

    def on_reloading(self, status: ManagerStatus) -> None:
        if not self._ready_sent:
            # A reload before the first READY=1 is part of the start.
            self._send({}, status)
            return
        # sd_notify(3): "RELOADING=1 Tells the service manager that the
        # service is reloading its configuration."
        # systemd.service(5), Type=notify-reload: "When initiating the
        # reload process the service is expected to reply with a
        # notification message via sd_notify(3) that contains the
        # "RELOADING=1" field in combination with "MONOTONIC_USEC=" set to
        # the current monotonic time (i.e. CLOCK_MONOTONIC in
        # clock_gettime(2)) in μs, formatted as decimal string."
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._reload_announced = True
        self._send({"RELOADING": 1, "MONOTONIC_USEC": usec}, status, with_status=True)

    def on_reloaded(self, status: ManagerStatus) -> None:
        if not self._reload_announced:
            self._send({}, status)
            return
        self._reload_announced = False
        # sd_notify(3): "a service that sends this notification must also
        # send a "READY=1" notification when it completed reloading its
        # configuration."
        self._send({"READY": 1}, status, with_status=True)

    def on_stopping(self, status: ManagerStatus) -> None:
        # sd_notify(3): "STOPPING=1 Tells the service manager that the
        # service is beginning its shutdown."
        self._stopping = True
        fields: dict[str, FieldValue] = {"STOPPING": 1}
        fields.update(self._stop_extension(status))
        self._send(fields, status, with_status=True)

    def on_status_changed(self, status: ManagerStatus) -> None:
        if self._watchdog is not None:
            self._watchdog.observe(status, self._clock())
        self._send({}, status)

    def on_worker_event(self, event: WorkerEvent) -> None:
        if (
            event.kind is WorkerEventKind.EXITED
            and event.stop_reason is None
            and event.exit_code is not None
        ):
            self._last_exit = (
                f"{event.service_name}({event.worker_id}) {describe_exit(event.exit_code)}"
            )

    def liveness_interval(self) -> float | None:
        # A tick is needed for the watchdog, for a status text held back by
        # the rate limit, and for the timeout extensions of a stop; with
        # none of them, the master sleeps until its next event.
        intervals = []
        if self._watchdog is not None:
            # The master keeps its next tick at the soonest interval that a
            # listener returns, so a tick that came early for another
            # reason and sent no ping does not push the ping a whole
            # interval later.
            intervals.append(max(self._watchdog.next_ping_in(self._clock()), MIN_TICK_INTERVAL))
        if self._stopping or self._status_pending or self._backlog:
            intervals.append(self._status_interval)
        if not intervals:
            return None
        interval = min(*intervals, MAX_TICK_INTERVAL)
        if self._send_failing:
            # A ping that failed is due at once; retry at the pace of the
            # status instead of spinning on a full queue.
            interval = max(interval, self._status_interval)
        return interval

    def on_liveness_tick(self, status: ManagerStatus) -> None:
        fields: dict[str, FieldValue] = {}
        now = self._clock()
        if self._watchdog is not None:
            self._watchdog.observe(status, now)
            if self._watchdog.ping_due(now):
                # sd_notify(3): "WATCHDOG=1 Tells the service manager to
                # update the watchdog timestamp."
                fields["WATCHDOG"] = 1
        fields.update(self._stop_extension(status))
        if self._send(fields, status) and "WATCHDOG" in fields and self._watchdog is not None:
            self._watchdog.pinged(now)

    def close(self) -> None:
        self._notifier.close()

    # Giving up

    def trigger_watchdog(self, reason: str) -> None:
        """Send ``WATCHDOG=trigger`` with ``reason`` as the status text.

        systemd then acts as when the watchdog expires: it kills the
        master with ``WatchdogSignal=`` (SIGABRT by default), records the
        result ``watchdog`` and applies ``Restart=``. The manager never
        calls it. It is for programs that want that action from their own
        code: create the listener, pass it in
        ``ServiceManager(listeners=[...])`` and call this in the master,
        from a hook or another listener, because the workers have no
        ``NOTIFY_SOCKET``.

        sd_notify(3): "WATCHDOG=trigger Tells the service manager that the
        service detected an internal error that should be handled by the
        configured watchdog options." and "WatchdogSec= does not need to
        be enabled for "WATCHDOG=trigger" to trigger the watchdog action."
        """
        text = _one_line(reason)
        if self._notify({"WATCHDOG": "trigger", "STATUS": text}):
            self._status_sent = text
            self._status_sent_at = self._clock()

    def on_give_up(self, status: ManagerStatus) -> None:
        """Send the status text at once, with the service given up.

        The master calls it when a service added with ``max_restarts``
        restarts more often than that allows. With ``on_give_up="stop"``
        the manager then stops gracefully, which sends ``STOPPING=1``, and
        exits 70. systemd then records the result ``exit-code`` and applies
        ``Restart=``. With ``"continue"`` the unit stays active.
        ``WATCHDOG=trigger`` would make systemd kill the whole unit in
        both cases, so it is not sent. Every later text names the service
        too, because the status shows it given up until the manager exits.
        """
        self._send({}, status, with_status=True)

    # Sending

    def _stop_extension(self, status: ManagerStatus) -> dict[str, FieldValue]:
        if status.phase is not ManagerPhase.STOPPING:
            return {}
        slots = [slot for service in status.services for slot in service.slots]
        # A worker that is stopped with no deadline (graceful shutdown
        # timeout 0) may never end: for it, systemd's TimeoutStopSec= holds.
        if not any(
            slot.state in _NOT_STOPPED_YET
            or (slot.state is SlotState.STOPPING and slot.kill_in is not None)
            for slot in slots
        ):
            if not self._extension_ended and any(
                slot.state is SlotState.STOPPING for slot in slots
            ):
                LOG.warning(
                    "Workers without a stop deadline are still stopping: no more "
                    "EXTEND_TIMEOUT_USEC, so systemd applies TimeoutStopSec="
                )
                self._extension_ended = True
            return {}
        # sd_notify(3): "EXTEND_TIMEOUT_USEC=... Tells the service manager
        # to extend the startup, runtime or shutdown service timeout
        # corresponding the current state. The value specified is a time in
        # microseconds during which the service must send a new message."
        # systemd.service(5), TimeoutStopSec=: "If a service of Type=notify
        # sends "EXTEND_TIMEOUT_USEC=...", this may cause the stop time to
        # be extended beyond TimeoutStopSec=." The master kills each worker
        # at its own deadline; past that, no extension is needed.
        # Ticks come at least every status interval while stopping.
        tick = self._status_interval
        if self._watchdog is not None:
            tick = min(tick, self._watchdog.ping_interval)
        seconds = max(3 * tick, MIN_STOP_EXTENSION)
        return {"EXTEND_TIMEOUT_USEC": round(seconds * 1_000_000)}

    def status_text(self, status: ManagerStatus) -> str:
        """Return the one-line ``STATUS=`` text for a status snapshot.

        The summary comes first, then notes: a last reload that did not
        complete, the services given up, the last unexpected worker exit, the
        services that stop the watchdog pings.
        """
        notes = []
        if status.last_reload is ReloadOutcome.FAILED:
            notes.append("last reload failed: a rolling replacement was not ready in time")
        elif status.last_reload is ReloadOutcome.CANCELLED:
            notes.append("last reload cancelled by a hook")
        given_up = [s.name for s in status.services if s.state is ServiceState.GIVEN_UP]
        if given_up:
            notes.append(f"given up: {', '.join(given_up)}")
        if self._last_exit is not None:
            notes.append(f"last exit: {self._last_exit}")
        if self._watchdog is not None:
            failing = self._watchdog.failing_services(self._clock())
            if failing:
                names = ", ".join(name for name, _ in failing)
                notes.append(
                    f"no watchdog pings: no lasting ready worker in {names} "
                    f"for over {self._watchdog.timeout:g} s"
                )
        return _status_line(status.summary(), notes)

    def _send(
        self, fields: dict[str, FieldValue], status: ManagerStatus, *, with_status: bool = False
    ) -> bool:
        """Send ``fields`` with the status text when it is due, in one message;
        return False if it failed.

        The text goes with every lifecycle message; otherwise only when it
        changed and the last one is at least a status interval old. The
        lifecycle fields of earlier messages that failed go first, each in
        its own message, and those of a message that fails are kept.
        """
        now = self._clock()
        text = self.status_text(status)
        status_due = text != self._status_sent and (
            self._status_sent_at is None or now - self._status_sent_at >= self._status_interval
        )
        if with_status or status_due:
            fields["STATUS"] = text
        sent = self._send_backlog()
        if sent and fields:
            sent = self._notify(fields)
            if sent and "STATUS" in fields:
                self._status_sent = text
                self._status_sent_at = now
        if not sent:
            self._backlog.add(fields)
        self._status_pending = text != self._status_sent
        return sent

    def _send_backlog(self) -> bool:
        """Send the kept lifecycle fields, oldest first; False if one failed."""
        for message in self._backlog.messages:
            if not self._notify(message):
                return False
            LOG.info("Sent %s to systemd after an earlier failure", ", ".join(message))
            self._backlog.remove_first()
        return True

    def _notify(self, fields: dict[str, FieldValue]) -> bool:
        try:
            self._notifier.notify(fields)
        except OSError as exc:
            # Logged once per run of failures: a service manager that has
            # gone away would otherwise fill the log at every tick.
            level = logging.DEBUG if self._send_failing else logging.WARNING
            LOG.log(
                level,
                "sd_notify to %s failed: %s; READY, RELOADING and STOPPING are kept and "
                "sent again with the next message",
                self._notifier.notify_socket,
                exc,
            )
            self._send_failing = True
            return False
        if self._send_failing:
            LOG.info("sd_notify to %s works again", self._notifier.notify_socket)
            self._send_failing = False
        return True


def _status_line(summary: str, notes: list[str]) -> str:
    """Join the summary and the notes in one line; shorten the summary first.

    The notes name what needs attention, so they are cut only when they
    alone are longer than ``MAX_STATUS_CHARS``.
    """
    tail = "".join(f"; {_one_line(note)}" for note in notes)
    head = _one_line(summary)
    room = MAX_STATUS_CHARS - len(tail)
    if len(head) > room:
        head = head[: max(room - 1, 0)] + "\u2026"
    return _one_line(head + tail)


def _one_line(text: str) -> str:
    # sd_notify(3): "STATUS=... Passes a single-line UTF-8 status string".
    line = " ".join(text.splitlines())
    if len(line) > MAX_STATUS_CHARS:
        line = line[: MAX_STATUS_CHARS - 1] + "\u2026"
    return line


def create_from_environment() -> SystemdListener | None:
    """Take the systemd variables and return a listener for their
    ``NOTIFY_SOCKET``. This is the part of ``create_listener`` that needs
    this module.

    Returns None when this process already made a ``SystemdListener`` and
    when ``NOTIFY_SOCKET`` is unset. Raises ``InvalidNotifySocketError``
    for a ``NOTIFY_SOCKET`` that names no usable address.
    """
    if SystemdListener._created:
        return None
    environment = systemd_environment()
    if environment.notify_socket is None:
        return None
    listener = SystemdListener(environment)
    # A listener of the entry point lasts one run(): the next run() of a
    # manager in this process gets a new one.
    SystemdListener._created = False
    return listener
