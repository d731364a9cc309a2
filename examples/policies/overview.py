"""Every supervision policy of ``ServiceManager.add`` in one program.

Four ``Worker`` processes announce that they are ready, then send
heartbeats from their loop. One ``Scheduler`` process runs beside them:
when it ends, the whole manager stops and exits with its exit status.
"""

from __future__ import annotations

import threading

import cotyledon
from cotyledon.types import WorkerId


class Worker(cotyledon.Service):
    name = "worker"
    announces_readiness = True

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self.stopping = threading.Event()

    def run(self) -> None:
        self.notify_ready()
        while not self.stopping.wait(1.0):
            self.heartbeat()

    def terminate(self) -> None:
        self.stopping.set()


class Scheduler(cotyledon.Service):
    name = "scheduler"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self.stopping = threading.Event()

    def run(self) -> None:
        self.stopping.wait()

    def terminate(self) -> None:
        self.stopping.set()


def main() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(
        Worker,
        workers=4,
        restart="on-failure",  # "always" (default), "on-failure", "never"
        restart_prevent_exit_status=(3,),  # as systemd's RestartPreventExitStatus=
        max_restarts=(5, 60),  # at most 5 restarts in 60 s, then give the service up
        on_give_up="stop",  # "stop": the manager exits 70; "continue": the others go on
        startup_timeout=30,  # ready within 30 s, or stopped and restarted
        heartbeat_timeout=10,  # Service.heartbeat() at least every 10 s once ready
        max_age=6 * 3600,  # replaced gracefully after about 6 hours (up to 10 % less)
        reload="rolling",  # "in-place", "restart" or "rolling" on SIGHUP
    )
    manager.add(Scheduler, stop_manager_on_exit=True)  # its exit ends the manager, with its status
    manager.run()


if __name__ == "__main__":
    main()
