"""A fetcher whose upstream is down, given up after 3 restarts within 60 s.

The fetcher's workers fail as they start. Its fourth failure within 60 s
gives it up, and with ``on_give_up="stop"`` the manager then stops the
web service gracefully and exits 70.
"""

from __future__ import annotations

import threading

import cotyledon
from cotyledon.types import WorkerId


class Fetcher(cotyledon.Service):
    name = "fetcher"

    def run(self) -> None:
        raise ConnectionError("upstream unreachable")  # the worker exits 1


class Web(cotyledon.Service):
    name = "web"

    def __init__(self, worker_id: WorkerId) -> None:
        super().__init__(worker_id)
        self.stopping = threading.Event()

    def run(self) -> None:
        self.stopping.wait()

    def terminate(self) -> None:
        self.stopping.set()


def main() -> None:
    manager = cotyledon.ServiceManager()
    manager.add(Fetcher, max_restarts=(3, 60), on_give_up="stop")
    manager.add(Web)
    manager.run()


if __name__ == "__main__":
    main()
