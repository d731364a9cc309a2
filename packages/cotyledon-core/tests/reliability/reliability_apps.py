"""Applications that the reliability suites start in a fresh interpreter.

Each function builds a manager and runs it. The scenario's parameters come
from environment variables that the test sets (``RELIABILITY_*``):
``RELIABILITY_START_METHOD`` names the multiprocessing start method of the
workers, and ``RELIABILITY_CONTROL_SOCKET``, when set, the path of the
manager's control socket.

The services are defined at module level, so that the spawn and forkserver
start methods can pickle them.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import threading
import time
from typing import Any

import cotyledon
from cotyledon import _manager
from cotyledon.core import RespawnPolicy
from cotyledon.core import Supervisor
from cotyledon.types import ServiceId
from cotyledon.types import WorkerId
from cotyledon_testkit import report


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _env_seconds(name: str, default: float = 0.0) -> float:
    return float(os.environ.get(name, default))


def _new_manager(**kwargs: Any) -> cotyledon.ServiceManager:
    """Build the manager with the start method and control socket of the scenario."""
    method = os.environ.get("RELIABILITY_START_METHOD", "fork")
    return cotyledon.ServiceManager(
        mp_context=multiprocessing.get_context(method),
        control_socket=os.environ.get("RELIABILITY_CONTROL_SOCKET") or None,
        **kwargs,
    )


def _fast_backoff(initial: float, maximum: float) -> None:
    """Shorten the restart backoff, so that a test sees thousands of deaths.

    The schedule keeps its shape (immediate first restart, doubling, cap,
    jitter); only its scale changes.
    """
    policy = RespawnPolicy(initial_delay=initial, max_delay=maximum, stable_after=10.0)
    fast = functools.partial(Supervisor, respawn_policy=policy)
    _manager.Supervisor = fast  # type: ignore[attr-defined,assignment]


class Steady(cotyledon.Service):
    """Runs until terminated; reloads in place.

    ``reload()`` and ``terminate()`` take ``RELIABILITY_RELOAD_SECONDS`` and
    ``RELIABILITY_TERMINATE_SECONDS`` (0 by default), so that a scenario can
    widen the reload and the graceful stop enough to send signals during them.
    """

    name = "steady"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()
        self._reload_seconds = _env_seconds("RELIABILITY_RELOAD_SECONDS")
        self._terminate_seconds = _env_seconds("RELIABILITY_TERMINATE_SECONDS")

    def run(self) -> None:
        self._stop.wait()

    def terminate(self) -> None:
        time.sleep(self._terminate_seconds)
        self._stop.set()

    def reload(self) -> None:
        time.sleep(self._reload_seconds)


class Replaced(cotyledon.Service):
    """Keeps the default reload(): each reload replaces its workers.

    Its ``__init__`` takes ``RELIABILITY_START_SECONDS`` (0 by default), so
    that a scenario can widen the manager's startup.
    """

    name = "replaced"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()
        time.sleep(_env_seconds("RELIABILITY_START_SECONDS"))

    def run(self) -> None:
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()


def chaos_app() -> None:
    """Two services whose size hooks change at random, from a seeded rng."""
    _fast_backoff(0.05, 0.4)
    manager = _new_manager(graceful_shutdown_timeout=2)
    steady = manager.add(Steady, workers=2)
    manager.add(Replaced, workers=1)
    _register_resize_hooks(manager, steady)
    manager.run()


def _register_resize_hooks(manager: cotyledon.ServiceManager, service_id: ServiceId) -> None:
    """Resize the service to 1 to 4 workers on each reload, and after one in
    five deaths, from an rng seeded with ``RELIABILITY_SEED``."""
    rng = random.Random(_env_int("RELIABILITY_SEED", 0))

    def resize(hook: str) -> None:
        workers = rng.randint(1, 4)
        manager.reconfigure(service_id, workers)
        report("resized", hook=hook, workers=workers)

    def on_reload() -> None:
        resize("reload")

    def on_dead_worker(service_id: ServiceId, worker_id: WorkerId, code: int) -> None:
        if rng.random() < 0.2:
            resize("dead_worker")

    manager.register_hooks(on_reload=on_reload, on_dead_worker=on_dead_worker)


# The pace of the services that announce their readiness and send heartbeats.
READY_PAUSE = 0.05
HEARTBEAT_INTERVAL = 0.1
HEARTBEAT_TIMEOUT = 3.0
STARTUP_TIMEOUT = 5.0


class Announcing(cotyledon.Service):
    """Announces its readiness itself, then sends heartbeats from its work loop.

    With ``RELIABILITY_STALL_ONE_IN`` set to N, one worker in N at random
    never gets ready, so that its startup timeout stops it. ``terminate()``
    takes ``RELIABILITY_TERMINATE_SECONDS``, as Steady's does.
    """

    name = "announcing"
    announces_readiness = True

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()
        one_in = _env_int("RELIABILITY_STALL_ONE_IN", 0)
        self._stalls = one_in > 0 and random.randrange(one_in) == 0

    def run(self) -> None:
        if self._stalls:
            report("stall", worker_id=self.worker_id)
            self._stop.wait()
            return
        if self._stop.wait(READY_PAUSE):
            return
        self.notify_ready()
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            self.heartbeat()

    def terminate(self) -> None:
        time.sleep(_env_seconds("RELIABILITY_TERMINATE_SECONDS"))
        self._stop.set()


# The exit statuses of a Quitter: 0 and 3 end its slot for good under the
# policies of ``policy_chaos_app``, 1 gets it restarted.
QUIT_STATUSES = (0, 1, 3)


class Quitter(cotyledon.Service):
    """Ends by itself after a short random run, with a status of ``QUIT_STATUSES``."""

    name = "quitter"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        rng = random.Random()
        if self._stop.wait(rng.uniform(0.2, 1.0)):
            return
        status = rng.choice(QUIT_STATUSES)
        report("quit", worker_id=self.worker_id, status=status)
        sys.exit(status)

    def terminate(self) -> None:
        self._stop.set()


class Doomed(cotyledon.Service):
    """Fails as soon as it runs, so that its restart intensity gives it up."""

    name = "doomed"

    def run(self) -> None:
        sys.exit(1)


def policy_chaos_app() -> None:
    """The chaos services with every supervision policy on.

    - ``announcing`` (resized by the hooks) announces its readiness within
      a startup timeout, sends heartbeats, restarts on failure only and
      never after exit status 3, and reloads by rolling replacement;
    - ``replaced`` is recycled at its maximum age;
    - ``quitter`` ends by itself: its slots finish on 0 and 3;
    - ``doomed`` is given up past its restart intensity, and the manager
      goes on without it.
    """
    _fast_backoff(0.05, 0.4)
    manager = _new_manager(graceful_shutdown_timeout=2)
    announcing = manager.add(
        Announcing,
        workers=2,
        restart="on-failure",
        restart_prevent_exit_status=(3,),
        startup_timeout=STARTUP_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        reload="rolling",
    )
    manager.add(Replaced, workers=1, max_age=_env_seconds("RELIABILITY_MAX_AGE", 4.0))
    manager.add(Quitter, workers=2, restart="on-failure", restart_prevent_exit_status=(3,))
    manager.add(Doomed, workers=1, max_restarts=(3, 60.0), on_give_up="continue")
    _register_resize_hooks(manager, announcing)
    manager.run()


class Crasher(cotyledon.Service):
    """Dies as soon as it runs, with status ``status``."""

    name = "crasher"

    def __init__(self, worker_id: WorkerId, status: int = 3) -> None:
        super().__init__(worker_id)
        self.status = status

    def run(self) -> None:
        os._exit(self.status)


def crash_loop_app() -> None:
    """Crashing workers on a short backoff, next to a steady one."""
    _fast_backoff(0.001, float(os.environ.get("RELIABILITY_MAX_DELAY", "0.004")))
    manager = _new_manager(graceful_shutdown_timeout=2)
    manager.add(Crasher, workers=_env_int("RELIABILITY_WORKERS", 4))
    manager.add(Steady, workers=1)
    manager.run()


class NeverReady(cotyledon.Service):
    """Announces its readiness itself, and never does."""

    name = "never-ready"
    announces_readiness = True

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self._stop = threading.Event()

    def run(self) -> None:
        self._stop.wait()

    def terminate(self) -> None:
        self._stop.set()


def crash_loop_policy_app() -> None:
    """A crash loop under the supervision policies.

    The crashers exit 1, which restarts them on failure, until their
    service has restarted ``RELIABILITY_MAX_RESTARTS`` times and is given
    up. The manager goes on. ``never-ready`` misses its startup timeout
    over and over, and ``announcing`` stays ready on its heartbeats.
    """
    _fast_backoff(0.001, float(os.environ.get("RELIABILITY_MAX_DELAY", "0.004")))
    manager = _new_manager(graceful_shutdown_timeout=2)
    manager.add(
        Crasher,
        workers=_env_int("RELIABILITY_WORKERS", 4),
        args=(1,),
        restart="on-failure",
        restart_prevent_exit_status=(3,),
        max_restarts=(_env_int("RELIABILITY_MAX_RESTARTS", 100), 3600.0),
        on_give_up="continue",
    )
    manager.add(NeverReady, workers=1, startup_timeout=0.3)
    manager.add(
        Announcing,
        workers=1,
        startup_timeout=STARTUP_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
    )
    manager.run()


class Misbehaving(cotyledon.Service):
    """Misbehaves as ``RELIABILITY_MISBEHAVIOUR`` says."""

    name = "misbehaving"
    graceful_shutdown_timeout = 1

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self.mode = os.environ["RELIABILITY_MISBEHAVIOUR"]
        if self.mode == "exit_in_init":
            sys.exit(4)
        # Signal handlers can only be set here, in the worker's main thread.
        if self.mode == "ignore_sigterm":
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        elif self.mode == "block_signals":
            signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())
        self._stop = threading.Event()

    def run(self) -> None:
        mode = self.mode
        if mode in ("fork_and_exit", "grandchild"):
            child = subprocess.Popen(["sleep", "300"])
            report("grandchild", pid=child.pid, worker_id=self.worker_id)
            if mode == "fork_and_exit":
                os._exit(5)
        elif mode == "setsid_grandchild":
            child = subprocess.Popen(["sleep", "300"], start_new_session=True)
            report("grandchild", pid=child.pid, worker_id=self.worker_id)
        elif mode == "close_fds":
            os.closerange(3, 1024)
        elif mode == "dup2_fds":
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in range(3, 64):
                if fd != devnull:
                    with contextlib.suppress(OSError):
                        os.dup2(devnull, fd)
        elif mode == "flood_stdout":
            chunk = "x" * 4095 + "\n"
            for _ in range(4096):
                sys.stdout.write(chunk)
            sys.stdout.flush()
        report("run", worker_id=self.worker_id, pid=os.getpid())
        # heartbeat() does nothing unless the service has a heartbeat timeout.
        while not self._stop.wait(HEARTBEAT_INTERVAL):
            self.heartbeat()

    def terminate(self) -> None:
        if self.mode == "hang_in_terminate":
            threading.Event().wait()
        self._stop.set()


def misbehaving_app() -> None:
    _fast_backoff(0.05, 0.4)
    manager = _new_manager(graceful_shutdown_timeout=1)
    manager.add(Misbehaving, workers=2)
    manager.add(Steady, workers=1)
    manager.run()


def misbehaving_policy_app() -> None:
    """The misbehaving workers under the supervision policies.

    They are recycled at ``RELIABILITY_MAX_AGE`` seconds and reloaded by
    rolling replacement, within startup and heartbeat timeouts. A slot that
    exits 5 (fork and exit) is finished, and the service is given up past
    3 restarts in 60 s, while ``announcing`` keeps the manager running.
    """
    _fast_backoff(0.05, 0.4)
    manager = _new_manager(graceful_shutdown_timeout=1)
    manager.add(
        Misbehaving,
        workers=2,
        restart="on-failure",
        restart_prevent_exit_status=(5,),
        max_restarts=(3, 60.0),
        on_give_up="continue",
        startup_timeout=STARTUP_TIMEOUT,
        heartbeat_timeout=HEARTBEAT_TIMEOUT,
        max_age=_env_seconds("RELIABILITY_MAX_AGE", 2.0),
        reload="rolling",
    )
    manager.add(Announcing, workers=1, heartbeat_timeout=HEARTBEAT_TIMEOUT)
    manager.run()


def _block_all_signals(service_id: ServiceId, worker_id: WorkerId, service: Any) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


def block_all_signals_app() -> None:
    """A worker that blocks every signal it can in every thread."""
    manager = _new_manager(graceful_shutdown_timeout=1)
    manager.register_hooks(on_new_worker=_block_all_signals)
    manager.add(Steady, workers=2)
    manager.run()


def master_with_helper_app() -> None:
    """Workers, and a helper that holds copies of every master descriptor."""
    helper = subprocess.Popen(["sleep", "300"], close_fds=False)
    report("helper", pid=helper.pid)
    manager = _new_manager(graceful_shutdown_timeout=5)
    manager.add(Steady, workers=_env_int("RELIABILITY_WORKERS", 3))
    manager.add(Replaced, workers=1)
    manager.run()


def many_workers_app() -> None:
    manager = _new_manager(graceful_shutdown_timeout=30)
    manager.add(Steady, workers=_env_int("RELIABILITY_WORKERS", 256))
    manager.run()


def quiet_steady_app() -> None:
    """One steady service, for the resource fault scenarios."""
    _fast_backoff(0.05, 0.8)
    manager = _new_manager(graceful_shutdown_timeout=2)
    manager.add(Steady, workers=_env_int("RELIABILITY_WORKERS", 2))
    manager.run()


def jobqueue_app() -> None:
    """The jobqueue example, with the spool and size from the environment."""
    # Imported by name: the example is on the path of the launched manager only.
    main = importlib.import_module("jobqueue.app").main
    main(
        [
            "--spool",
            os.environ["RELIABILITY_SPOOL"],
            "--workers",
            os.environ.get("RELIABILITY_WORKERS", "3"),
            "--jobs",
            os.environ.get("RELIABILITY_JOBS", "0"),
            "--start-method",
            os.environ.get("RELIABILITY_START_METHOD", "fork"),
        ]
    )


def http_service_app() -> None:
    """The httpservice example on a free port of 127.0.0.1, written to a file."""
    # By default, a worker killed again and again within 10 s of its start
    # backs off up to 30 s, and the soak version kills that often.
    _fast_backoff(0.05, 0.4)
    # Imported by name: the example is on the path of the launched manager only.
    main = importlib.import_module("httpservice.app").main
    main(
        [
            "--port",
            "0",
            "--port-file",
            os.environ["RELIABILITY_PORT_FILE"],
            "--config",
            os.environ["RELIABILITY_CONFIG"],
            "--workers",
            os.environ.get("RELIABILITY_WORKERS", "3"),
        ]
    )
