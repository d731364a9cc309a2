"""Applications that the runtime tests start in a fresh interpreter.

Each function builds a manager and runs it. Services and hooks report what
happens to the test through ``cotyledon_testkit.report``.
"""

from __future__ import annotations

import atexit
import contextlib
import errno
import logging
import multiprocessing
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from slow_start_service import PAUSE_ENV
from slow_start_service import SlowStart

import cotyledon
from cotyledon.types import ServiceId
from cotyledon.types import WorkerId
from cotyledon_testkit import report


class Probe(cotyledon.Service):
    """Runs until terminated; reloads in place."""

    name = "probe"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        self._stop.wait()

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        self._stop.set()

    def reload(self) -> None:
        report("reload", service=self.name, worker_id=self.worker_id)


class Restarter(cotyledon.Service):
    """Keeps the default reload(): restarted on reload."""

    name = "restarter"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        self._stop.wait()

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        self._stop.set()


class Crasher(cotyledon.Service):
    """Raises from run() at once."""

    name = "crasher"

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        raise RuntimeError("crasher always fails")


class Exiter(cotyledon.Service):
    """Leaves run() with sys.exit(3), after writing unflushed output."""

    name = "exiter"

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        sys.stdout.write(f"exiter output {os.getpid()} without newline")
        sys.exit(3)


class FailingTerminate(cotyledon.Service):
    name = "failing-terminate"

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)

    def terminate(self) -> None:
        raise RuntimeError("terminate fails")


class Stubborn(cotyledon.Service):
    """Starts a grandchild in its process group and never finishes terminate()."""

    name = "stubborn"
    graceful_shutdown_timeout = 1

    def run(self) -> None:
        child = subprocess.Popen(["sleep", "300"])
        report("run", service=self.name, worker_id=self.worker_id, grandchild=child.pid)

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        threading.Event().wait()


def _report_hooks(
    manager: cotyledon.ServiceManager, names: dict[ServiceId, str], *, in_workers: bool = True
) -> None:
    def on_terminate() -> None:
        report("hook_terminate")

    def on_reload() -> None:
        report("hook_reload")

    def on_new_worker(service_id: ServiceId, worker_id: WorkerId, service: Any) -> None:
        report("hook_new_worker", service=names[service_id], worker_id=worker_id)

    def on_dead_worker(service_id: ServiceId, worker_id: WorkerId, exit_code: int) -> None:
        report("hook_dead_worker", service=names[service_id], worker_id=worker_id, code=exit_code)

    manager.register_hooks(on_terminate, on_reload, None, on_dead_worker)
    if in_workers:
        # A closure cannot be pickled for the spawn and forkserver methods.
        manager.register_hooks(on_new_worker=on_new_worker)


def basic_app() -> None:
    """Two probes and a restarter, a helper process in the master's group."""
    helper = subprocess.Popen(["sleep", "300"])
    report("helper", pid=helper.pid)
    manager = cotyledon.ServiceManager()
    names = {manager.add(Probe, 2): "probe", manager.add(Restarter, 1): "restarter"}
    _report_hooks(manager, names)

    def on_exit() -> None:
        report("atexit")

    atexit.register(on_exit)
    manager.run()


def crash_app() -> None:
    """A crashing service next to a healthy one."""
    manager = cotyledon.ServiceManager()
    names = {manager.add(Crasher, 1): "crasher", manager.add(Probe, 1): "probe"}
    _report_hooks(manager, names)
    manager.run()


def exit_status_app() -> None:
    manager = cotyledon.ServiceManager()
    names = {manager.add(Exiter, 1): "exiter", manager.add(FailingTerminate, 1): "failing"}
    _report_hooks(manager, names)
    manager.run()


class Unfinished(cotyledon.Service):
    """Reports, then never returns from its constructor."""

    name = "unfinished"
    graceful_shutdown_timeout = 1

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        report("init", service=self.name, worker_id=worker_id)
        threading.Event().wait()


def unfinished_app() -> None:
    """One worker that never gets past its service's constructor."""
    manager = cotyledon.ServiceManager()
    manager.add(Unfinished, 1)
    manager.run()


_ALARM_CHECK = "import signal, sys; sys.exit(signal.getsignal(signal.SIGALRM) is signal.SIG_IGN)"


def _alarm_in_programs() -> str:
    """Run a program and return how it finds SIGALRM: "default" or "ignored"."""
    code = subprocess.run([sys.executable, "-c", _ALARM_CHECK], check=False).returncode
    return {0: "default", 1: "ignored"}.get(code, str(code))


class AlarmProbe(Probe):
    """Reports how a program that run() starts finds SIGALRM."""

    def run(self) -> None:
        report("alarm", where="worker", disposition=_alarm_in_programs())
        super().run()


def alarm_app() -> None:
    """A worker and an on_reload hook of the master that each run a program
    and report how it finds SIGALRM."""
    manager = cotyledon.ServiceManager()
    manager.add(AlarmProbe, 1)

    def check_alarm() -> None:
        report("alarm", where="master", disposition=_alarm_in_programs())

    manager.register_hooks(on_reload=check_alarm)
    manager.run()


def stubborn_app() -> None:
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=30)
    names = {manager.add(Stubborn, 1): "stubborn", manager.add(Probe, 1): "probe"}
    _report_hooks(manager, names)
    manager.run()


def fd_holder_app() -> None:
    """A helper that keeps copies of the master's descriptors."""
    manager = cotyledon.ServiceManager()
    names = {manager.add(Probe, 2): "probe"}
    _report_hooks(manager, names)
    read_end, write_end = os.pipe()
    holder = subprocess.Popen(["sleep", "300"], close_fds=False, pass_fds=(read_end, write_end))
    report("helper", pid=holder.pid)
    manager.run()


def reconfigure_app() -> None:
    """Each reload toggles the probe service between 1 and 3 workers."""
    manager = cotyledon.ServiceManager()
    service_id = manager.add(Probe, 1)
    _report_hooks(manager, {service_id: "probe"})
    counts = iter([3, 1, 3, 1])

    def on_reload() -> None:
        manager.reconfigure(service_id, next(counts))

    manager.register_hooks(on_reload=on_reload)
    manager.run()


def reconfigure_thread_app() -> None:
    """A thread of the master scales the service up once it runs."""
    manager = cotyledon.ServiceManager()
    service_id = manager.add(Probe, 1)
    _report_hooks(manager, {service_id: "probe"})

    def scale_up() -> None:
        manager.reconfigure(service_id, 2)

    threading.Timer(0.2, scale_up).start()
    manager.run()


def shutdown_from_hook_app() -> None:
    """The manager shuts down when a worker of the first service dies."""
    manager = cotyledon.ServiceManager()
    first = manager.add(Probe, 1)
    second = manager.add(Restarter, 2)
    names = {first: "probe", second: "restarter"}
    _report_hooks(manager, names)

    def on_dead_worker(service_id: ServiceId, worker_id: WorkerId, exit_code: int) -> None:
        if service_id == first:
            manager.shutdown()

    manager.register_hooks(on_dead_worker=on_dead_worker)
    manager.run()


def _context_app(method: str) -> None:
    manager = cotyledon.ServiceManager(mp_context=multiprocessing.get_context(method))
    names = {manager.add(Probe, 2): "probe"}
    _report_hooks(manager, names, in_workers=False)
    manager.run()


def spawn_app() -> None:
    _context_app("spawn")


def slow_start_app() -> None:
    """One worker whose start is slow, with the start method ``START_METHOD``."""
    # The workers take 2 s to import the module; the master has it already.
    os.environ[PAUSE_ENV] = "2"
    context = multiprocessing.get_context(os.environ["START_METHOD"])
    manager = cotyledon.ServiceManager(mp_context=context, graceful_shutdown_timeout=5)
    manager.add(SlowStart, 1)
    manager.run()


def forkserver_app() -> None:
    _context_app("forkserver")


def failing_hooks_app() -> None:
    """Hooks that raise, each followed by one that reports."""
    manager = cotyledon.ServiceManager()
    service_id = manager.add(Probe, 1)

    def broken_reload() -> None:
        raise RuntimeError("reload hook fails")

    def broken_dead_worker(service_id: ServiceId, worker_id: WorkerId, exit_code: int) -> None:
        raise RuntimeError("dead worker hook fails")

    def broken_terminate() -> None:
        raise RuntimeError("terminate hook fails")

    manager.register_hooks(
        on_reload=broken_reload,
        on_dead_worker=broken_dead_worker,
        on_terminate=broken_terminate,
    )
    _report_hooks(manager, {service_id: "probe"})
    manager.run()


def exiting_hooks_app() -> None:
    """Hooks that call sys.exit(), each followed by one that reports."""
    manager = cotyledon.ServiceManager()
    service_id = manager.add(Probe, 1)

    def exiting_reload() -> None:
        sys.exit(4)

    def exiting_terminate() -> None:
        sys.exit(5)

    manager.register_hooks(on_reload=exiting_reload, on_terminate=exiting_terminate)
    _report_hooks(manager, {service_id: "probe"})
    manager.run()


def many_workers_app() -> None:
    """Ten workers, for signals that arrive while they start."""
    manager = cotyledon.ServiceManager()
    names = {manager.add(Probe, 10): "probe"}
    _report_hooks(manager, names)
    report("manager_ready")
    manager.run()


class TickingListener(cotyledon.LifecycleListener):
    """Asks for a liveness tick every 0.05 s and reports each."""

    def liveness_interval(self) -> float | None:
        return 0.05

    def on_liveness_tick(self, status: cotyledon.ManagerStatus) -> None:
        report("tick", summary=status.summary())


class BrokenListener(cotyledon.LifecycleListener):
    def on_ready(self, status: cotyledon.ManagerStatus) -> None:
        raise RuntimeError("listener fails")

    def on_worker_event(self, event: cotyledon.WorkerEvent) -> None:
        raise RuntimeError("listener fails on worker event")


def listeners_app() -> None:
    manager = cotyledon.ServiceManager(listeners=[BrokenListener(), TickingListener()])
    manager.add(Probe, 2)
    manager.add(Restarter, 1)
    manager.run()


class DistantTickListener(cotyledon.LifecycleListener):
    """Asks for a liveness tick in 58 days, further than epoll can wait."""

    def liveness_interval(self) -> float | None:
        return 5_000_000.0


def distant_tick_app() -> None:
    manager = cotyledon.ServiceManager(listeners=[DistantTickListener()])
    manager.add(Probe, 1)
    manager.run()


def no_discovery_app() -> None:
    manager = cotyledon.ServiceManager(discover_listeners=False)
    manager.add(Probe, 1)
    manager.run()


class FailingReload(Probe):
    """reload() raises: the worker exits 1 and is replaced."""

    name = "failing-reload"

    def reload(self) -> None:
        raise RuntimeError("reload fails")


def failing_reload_app() -> None:
    manager = cotyledon.ServiceManager()
    names = {manager.add(FailingReload, 1): "failing-reload"}
    _report_hooks(manager, names)
    manager.run()


class QueueUser(cotyledon.Service):
    """Sends a message through a queue that the master made and used, then
    reports what came back, and what its standard input is."""

    name = "queue-user"

    def __init__(self, worker_id: WorkerId, queue: Any) -> None:
        super().__init__(worker_id)
        self._queue = queue
        self._stop = threading.Event()

    def run(self) -> None:
        try:
            self._queue.put(f"from worker {self.worker_id}")
            echoed = self._queue.get(timeout=10)
        except Exception as exc:
            echoed = f"failed: {exc!r}"
        report(
            "run",
            service=self.name,
            worker_id=self.worker_id,
            echoed=echoed,
            stdin=os.readlink("/proc/self/fd/0"),
            stdin_read=sys.stdin.read(),
        )
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()


def mp_queue_app() -> None:
    """A multiprocessing queue that the master used before run(): its feeder
    thread runs in the master, not in the workers."""
    queue = multiprocessing.get_context("fork").Queue()
    queue.put("from the master")
    report("master_queue", echoed=queue.get(timeout=10))
    manager = cotyledon.ServiceManager()
    manager.add(QueueUser, 2, args=(queue,))
    manager.run()


class StdinProbe(cotyledon.Service):
    """Reports what its standard input is, and what a program that it runs
    reads from the standard input that it inherits."""

    name = "stdin-probe"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        # cat exits 1 when it has no standard input to read.
        cat = subprocess.run(["cat"], capture_output=True, timeout=10, check=False)
        report(
            "run",
            service=self.name,
            worker_id=self.worker_id,
            stdin=os.readlink("/proc/self/fd/0"),
            stdin_fileno=sys.stdin.fileno(),
            stdin_seekable=sys.stdin.seekable(),
            stdin_read=sys.stdin.read(),
            cat_status=cat.returncode,
            cat_output=cat.stdout.decode(),
        )
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()


def pipe_stdin_app() -> None:
    """The master's standard input is a pipe with data in it, part of which
    the master read: a worker reads none of it."""
    read_end, write_end = os.pipe()
    os.write(write_end, b"first line\nfor the master only\n")
    os.close(write_end)
    os.dup2(read_end, 0)
    os.close(read_end)
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115
    report("master_stdin", line=sys.stdin.readline())
    manager = cotyledon.ServiceManager()
    manager.add(StdinProbe, 1)
    manager.run()


def no_stdin_app() -> None:
    """The master has no descriptor 0 when it starts its workers."""
    os.close(0)
    manager = cotyledon.ServiceManager()
    manager.add(StdinProbe, 1)
    manager.run()


def hook_child_app() -> None:
    """A hook of the master starts a child that exits while workers restart."""
    manager = cotyledon.ServiceManager()
    names = {manager.add(Crasher, 1): "crasher"}
    _report_hooks(manager, names)
    children: list[subprocess.Popen[bytes]] = []

    def on_dead_worker(service_id: ServiceId, worker_id: WorkerId, exit_code: int) -> None:
        # The first death starts the child, and a later one waits for it. In
        # between, the master reaps workers while an exited child of the
        # hook waits for its owner to reap it.
        if not children:
            children.append(subprocess.Popen(["sh", "-c", "exit 7"]))
            report("hook_child", pid=children[0].pid)
        elif len(children) == 1:
            children.append(children[0])
            report("hook_child_status", code=children[0].wait(timeout=10))

    manager.register_hooks(on_dead_worker=on_dead_worker)
    manager.run()


def fork_fails_once_app() -> None:
    """The master's second fork fails, in the middle of the first start of
    four workers, with an OSError or, when ``FORK_ERROR`` is ``runtime``, a
    RuntimeError."""
    real_fork = os.fork
    calls = 0
    error: Exception = OSError(errno.EAGAIN, "fork refused once by the test")
    if os.environ.get("FORK_ERROR") == "runtime":
        error = RuntimeError("fork refused once by the test")

    def fork() -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise error
        return real_fork()

    os.fork = fork
    manager = cotyledon.ServiceManager()
    manager.add(Probe, 4)
    manager.run()


def _report_grandchild_parent(queue: Any) -> None:
    parent = multiprocessing.parent_process()
    queue.put(None if parent is None else parent.pid)


class IdentityProbe(cotyledon.Service):
    """Reports the process objects that multiprocessing returns in its worker."""

    name = "identity"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        current = multiprocessing.current_process()
        parent = multiprocessing.parent_process()
        # A process that the worker starts with multiprocessing has the
        # worker as its parent.
        context = multiprocessing.get_context("fork")
        queue = context.SimpleQueue()
        grandchild = context.Process(target=_report_grandchild_parent, args=(queue,))
        grandchild.start()
        grandchild_parent = queue.get()
        grandchild.join()
        report(
            "run",
            worker_id=self.worker_id,
            name=current.name,
            pid=current.pid,
            alive=current.is_alive(),
            parent_pid=None if parent is None else parent.pid,
            parent_name=None if parent is None else parent.name,
            parent_alive=None if parent is None else parent.is_alive(),
            grandchild_parent=grandchild_parent,
            grandchild_exit=grandchild.exitcode,
        )
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()


def process_identity_app() -> None:
    """Two identity probes, with the start method ``START_METHOD``."""
    report("master", name=multiprocessing.current_process().name)
    context = multiprocessing.get_context(os.environ["START_METHOD"])
    manager = cotyledon.ServiceManager(mp_context=context)
    manager.add(IdentityProbe, 2)
    manager.run()


class SlowReload(Probe):
    """reload() waits until the file ``RELEASE_FILE`` exists."""

    name = "slow"

    def reload(self) -> None:
        report("reload_start", thread=threading.current_thread().name)
        deadline = time.monotonic() + 20
        while not os.path.exists(os.environ["RELEASE_FILE"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        report("reload_end")

    def terminate(self) -> None:
        report("terminate", thread=threading.current_thread().name)
        self._stop.set()


def slow_reload_app() -> None:
    """One worker whose reload() waits for the test."""
    manager = cotyledon.ServiceManager()
    manager.add(SlowReload, 1)
    manager.run()


class BriefSlowReload(SlowReload):
    """A slow reload whose worker may take 1 s to stop gracefully."""

    graceful_shutdown_timeout = 1


def brief_slow_reload_app() -> None:
    """One worker whose reload() waits for the test, with a graceful
    shutdown timeout of 1 s."""
    manager = cotyledon.ServiceManager()
    manager.add(BriefSlowReload, 1)
    manager.run()


class SteppedReload(Probe):
    """Reload number N (from 1) waits until the file ``RELEASE_FILE``-N exists."""

    name = "stepped"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._reloads = 0

    def reload(self) -> None:
        self._reloads += 1
        report("reload_start", number=self._reloads)
        release = f"{os.environ['RELEASE_FILE']}-{self._reloads}"
        deadline = time.monotonic() + 20
        while not os.path.exists(release) and time.monotonic() < deadline:
            time.sleep(0.01)
        report("reload_end", number=self._reloads)


def stepped_reload_app() -> None:
    """One worker whose reloads each wait for the test."""
    manager = cotyledon.ServiceManager()
    manager.add(SteppedReload, 1)
    manager.run()


def held_reload_hook_app() -> None:
    """Two workers; the first call of the reload hook waits for ``RELEASE_FILE``."""
    manager = cotyledon.ServiceManager()
    manager.add(Probe, 2)
    calls = 0

    def on_reload() -> None:
        nonlocal calls
        calls += 1
        report("hook_reload", number=calls)
        deadline = time.monotonic() + 20
        while calls == 1 and not os.path.exists(os.environ["RELEASE_FILE"]):
            if time.monotonic() > deadline:
                break
            time.sleep(0.01)

    manager.register_hooks(on_reload=on_reload)
    manager.run()


_TRACED: set[str] = set()


def _trace_service_calls(frame: Any, event: str, arg: Any) -> None:
    """Record the service methods that a traced thread runs."""
    if event == "call" and frame.f_code.co_name in ("reload", "terminate"):
        _TRACED.add(frame.f_code.co_name)


def _exit_at_once() -> None:
    pass


def _wait_child(pid: int) -> int | None:
    """Return the exit code of a forked child, or None if it still runs after 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    return None


class ForkInCalls(Probe):
    """Starts children from reload() and terminate(), as run() could."""

    name = "forker"

    def _start_children(self, kind: str) -> None:
        process = multiprocessing.get_context("fork").Process(target=_exit_at_once)
        process.start()
        process.join(10)
        pid = os.fork()
        if pid == 0:
            # SystemExit in the child: it must end it, whatever thread forked it.
            sys.exit(0)
        report(
            kind,
            process_exit=process.exitcode,
            fork_exit=_wait_child(pid),
            traced=kind in _TRACED,
        )

    def reload(self) -> None:
        self._start_children("reload")

    def terminate(self) -> None:
        self._start_children("terminate")
        self._stop.set()


def _signals_of_a_new_child() -> str:
    """Fork a child that reports, by its exit status, whether it has its
    own signal handling: 0 when SIGTERM has its default action and no
    wakeup descriptor is set."""
    pid = os.fork()
    if pid == 0:
        status = 0
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            status |= 1
        if signal.set_wakeup_fd(-1) != -1:
            status |= 2
        os._exit(status)
    code = _wait_child(pid)
    return {0: "own", 1: "parent's handler", 2: "parent's wakeup fd"}.get(code or 0, str(code))


class ForkFromRun(Probe):
    """Forks a child from run() and reports what signal handling it got."""

    def run(self) -> None:
        report("child_signals", worker_id=self.worker_id, signals=_signals_of_a_new_child())
        super().run()


def fork_from_run_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(ForkFromRun, 2)
    manager.run()


def fork_in_calls_app() -> None:
    """One worker that forks from reload() and terminate(), with a trace
    function set in the main thread, which a forked worker keeps, and for
    new threads."""
    sys.settrace(_trace_service_calls)
    threading.settrace(_trace_service_calls)
    manager = cotyledon.ServiceManager()
    manager.add(ForkInCalls, 1)
    manager.run()


class ForkReturnsInReload(Probe):
    """Forks from reload() a child that returns from reload() as well."""

    name = "fork-returns"

    def reload(self) -> None:
        pid = os.fork()
        if pid == 0:
            return
        report("reload", fork_exit=_wait_child(pid))


def fork_returns_in_reload_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(ForkReturnsInReload, 1)
    manager.run()


class ThreadProbe(Probe):
    """Reports the names of its worker's threads from run()."""

    def run(self) -> None:
        names = sorted(thread.name for thread in threading.enumerate())
        report("threads", worker_id=self.worker_id, names=names)
        super().run()


def thread_probe_app() -> None:
    """Forty workers, forked back to back: the master reads no report until
    the last fork."""
    manager = cotyledon.ServiceManager()
    manager.add(ThreadProbe, 40)
    manager.run()


class PidfdProbe(Probe):
    """Reports how many pidfds its worker holds, from run()."""

    def run(self) -> None:
        count = 0
        for fd in os.listdir("/proc/self/fd"):
            # The descriptor of the listing itself is closed by now.
            with contextlib.suppress(FileNotFoundError):
                count += os.readlink(f"/proc/self/fd/{fd}") == "anon_inode:[pidfd]"
        report("pidfds", worker_id=self.worker_id, count=count)
        super().run()


def pidfd_probe_app() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(PidfdProbe, 2)
    manager.run()


class SlowTerminateHeartbeater(cotyledon.Service):
    """Heartbeats until terminated; terminate() takes half a second."""

    name = "heartbeater"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        while not self._stop.wait(0.01):
            self.heartbeat()

    def terminate(self) -> None:
        time.sleep(0.5)
        report("terminated", service=self.name, worker_id=self.worker_id)
        self._stop.set()


def sigpipe_default_app() -> None:
    """Workers that heartbeat, under the default action of SIGPIPE (death),
    as programs that write to pipes often restore it."""
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    manager = cotyledon.ServiceManager()
    manager.add(SlowTerminateHeartbeater, 2, heartbeat_timeout=0.2)
    manager.run()


class BurstHeartbeater(cotyledon.Service):
    """Once the file ``GO_FILE`` exists, heartbeats 30 times, reports its
    worker's threads, and goes on heartbeating until terminated."""

    name = "burst"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        report("run", service=self.name, worker_id=self.worker_id)
        while not os.path.exists(os.environ["GO_FILE"]) and not self._stop.wait(0.01):
            pass
        beats = 0
        while not self._stop.wait(0.03):
            self.heartbeat()
            beats += 1
            if beats == 30:
                names = sorted(thread.name for thread in threading.enumerate())
                report("threads", worker_id=self.worker_id, names=names)

    def terminate(self) -> None:
        self._stop.set()


def burst_heartbeat_app() -> None:
    """One heartbeating worker, with the start method ``START_METHOD``."""
    context = multiprocessing.get_context(os.environ["START_METHOD"])
    manager = cotyledon.ServiceManager(mp_context=context)
    manager.add(BurstHeartbeater, 1, heartbeat_timeout=0.1)
    manager.run()


_HELPER = """
import os, signal, sys, time
def clean_up(*_):
    time.sleep(0.3)
    open(sys.argv[3], "w").close()
    os._exit(0)
if sys.argv[1] == "cleans-up":
    signal.signal(signal.SIGTERM, clean_up)
else:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(sys.argv[2], "w").close()
while True:
    signal.pause()
"""


class HelperParent(cotyledon.Service):
    """Starts two helper processes in its group: one that cleans up on
    SIGTERM (it writes a file after 0.3 s), one that ignores SIGTERM."""

    name = "helpers"

    def run(self) -> None:
        folder = os.environ["HELPER_DIR"]
        pids = {}
        for kind in ("cleans-up", "ignores"):
            ready = os.path.join(folder, f"{kind}.ready")
            done = os.path.join(folder, f"{kind}.done")
            helper = subprocess.Popen([sys.executable, "-c", _HELPER, kind, ready, done])
            pids[kind] = helper.pid
            deadline = time.monotonic() + 20
            while not os.path.exists(ready) and time.monotonic() < deadline:
                time.sleep(0.01)
        report("run", service=self.name, worker_id=self.worker_id, helpers=pids)
        threading.Event().wait()


class DetachedHelperParent(cotyledon.Service):
    """Starts, through a shell that exits at once, a helper that ignores
    SIGTERM: the helper stays in the worker's group but is not its child."""

    name = "detached"

    def run(self) -> None:
        ready = os.path.join(os.environ["HELPER_DIR"], "ignores.ready")
        done = os.path.join(os.environ["HELPER_DIR"], "ignores.done")
        command = (
            f"{shlex.quote(sys.executable)} -c {shlex.quote(_HELPER)} ignores {ready} {done} &"
        )
        subprocess.run(["sh", "-c", command], check=True)
        deadline = time.monotonic() + 20
        while not os.path.exists(ready) and time.monotonic() < deadline:
            time.sleep(0.01)
        report("run", service=self.name, worker_id=self.worker_id)
        threading.Event().wait()


def detached_helper_app() -> None:
    """One DetachedHelperParent, with a graceful shutdown timeout of 1 s."""
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=1)
    manager.add(DetachedHelperParent, 1)
    manager.run()


def helpers_app() -> None:
    """One HelperParent, with the graceful shutdown timeout ``HELPER_TIMEOUT``
    (1 s without it)."""
    timeout = float(os.environ.get("HELPER_TIMEOUT", "1"))
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=timeout)
    manager.add(HelperParent, 1)
    manager.run()


class SessionHelperParent(cotyledon.Service):
    """Starts a helper in a session of its own, out of its worker's group."""

    name = "session-helper"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        helper = subprocess.Popen(["sleep", "300"], start_new_session=True)
        report("run", service=self.name, worker_id=self.worker_id, helper=helper.pid)
        self._stop.wait()

    def terminate(self) -> None:
        report("terminate", service=self.name, worker_id=self.worker_id)
        self._stop.set()


def session_helper_app() -> None:
    """One SessionHelperParent, with a graceful shutdown timeout of 30 s."""
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=30)
    manager.add(SessionHelperParent, 1)
    manager.run()


class BlockedStderr(cotyledon.Service):
    """Replaces its stderr with a full pipe that is never read, then logs
    from run(), which blocks with the log handler's lock acquired."""

    name = "blocked-stderr"
    graceful_shutdown_timeout = 1

    def run(self) -> None:
        # The read end stays open, so that a write blocks rather than fails.
        _read_end, write_end = os.pipe()
        os.set_blocking(write_end, False)
        with contextlib.suppress(BlockingIOError):
            while True:
                os.write(write_end, b"x" * 4096)
        os.set_blocking(write_end, True)
        report("run", service=self.name, worker_id=self.worker_id)
        os.dup2(write_end, 2)
        logging.getLogger(__name__).warning("this line never gets out")


def blocked_stderr_app() -> None:
    """One BlockedStderr, whose graceful shutdown timeout is 1 s."""
    manager = cotyledon.ServiceManager()
    manager.add(BlockedStderr, 1)
    manager.run()


class FailingLateInit(cotyledon.Service):
    """Starts a helper in its constructor, then raises once the file
    ``RELEASE_FILE`` exists."""

    name = "failing-late-init"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        helper = subprocess.Popen(["sleep", "300"])
        report("init", worker_id=worker_id, helper=helper.pid)
        deadline = time.monotonic() + 20
        while not os.path.exists(os.environ["RELEASE_FILE"]) and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("constructor fails late")

    def run(self) -> None:
        pass


def failing_late_init_app() -> None:
    """One FailingLateInit, with a graceful shutdown timeout of 30 s."""
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=30)
    manager.add(FailingLateInit, 1)
    manager.run()
