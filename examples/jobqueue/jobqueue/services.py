"""The two services of the application: Processor and Reporter."""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import cotyledon
from cotyledon.types import WorkerId

from .config import ConfigError
from .config import config_path
from .config import load_config
from .jobs import InvalidJobError
from .jobs import Job
from .jobs import parse_job
from .jobs import run_job
from .spool import Spool

LOG = logging.getLogger(__name__)

# How long an idle worker waits before it looks for new jobs again.
IDLE_POLL = 0.1


class Processor(cotyledon.Service):
    """Takes jobs from the spool one at a time and writes their results.

    Every worker has a directory of its own under ``claimed/``, named
    after its worker id. The master gives a dead worker's replacement the
    same id, so the replacement finds what its predecessor left there.
    """

    name = "Processor"
    # The largest job (64 MiB) takes a few seconds by estimate, so a worker
    # that needs longer than this to stop is stuck.
    graceful_shutdown_timeout = 10.0

    def __init__(self, worker_id: WorkerId, spool_root: str) -> None:
        super().__init__(worker_id)
        self._spool = Spool(Path(spool_root))
        self._config_path = config_path(self._spool.root)
        self._config = load_config(self._config_path)
        self._stopping = threading.Event()
        self._stopped = threading.Event()
        self._jobs_done = 0
        self._pid = os.getpid()
        self._title = f"Processor({worker_id})"

    def run(self) -> None:
        try:
            self._recover()
            config = self._config
            LOG.info(
                "%s ready (pid %d, pause %.3f s, label %r)",
                self._title,
                self._pid,
                config.pause,
                config.label,
            )
            while not self._stopping.is_set():
                claimed = self._spool.claim(self.worker_id)
                if claimed is None:
                    self._stopping.wait(IDLE_POLL)
                    continue
                self._process(claimed)
                self._stopping.wait(self._config.pause)
        finally:
            self._stopped.set()

    def terminate(self) -> None:
        LOG.info("%s stopping: it takes no new job", self._title)
        self._stopping.set()
        # The worker process ends as soon as this returns: wait for the
        # job in hand to be finished.
        self._stopped.wait()
        LOG.info("%s stopped after %d jobs", self._title, self._jobs_done)

    def reload(self) -> None:
        try:
            config = load_config(self._config_path)
        except ConfigError as exc:
            # The worker goes on with the configuration it has.
            LOG.warning("%s kept its configuration: %s", self._title, exc)
            return
        # A single assignment, so the run thread reads either the old
        # configuration or the new one.
        self._config = config
        LOG.info(
            "%s reread %s: pause %.3f s, label %r",
            self._title,
            self._config_path,
            config.pause,
            config.label,
        )

    def _recover(self) -> None:
        note = f"pid={self._pid} recovered"
        for name, action in self._spool.recover(self.worker_id, note):
            LOG.warning(
                "%s found %s, left by an earlier %s: %s",
                self._title,
                name,
                self._title,
                action,
            )

    def _process(self, claimed: Path) -> None:
        try:
            job = read_job(claimed)
        except InvalidJobError as exc:
            self._reject(claimed, exc)
            return
        config = self._config
        started = time.perf_counter()
        result = run_job(job)
        elapsed = time.perf_counter() - started
        result.update(
            worker_id=self.worker_id,
            pid=self._pid,
            label=config.label,
            seconds=round(elapsed, 6),
        )
        self._spool.finish(claimed, self.worker_id, result, f"pid={self._pid}")
        self._jobs_done += 1
        LOG.debug(
            "%s did %s (%s, %d bytes) in %.1f ms",
            self._title,
            job.id,
            job.kind,
            job.size,
            elapsed * 1000,
        )

    def _reject(self, claimed: Path, reason: Exception) -> None:
        target = self._spool.reject(claimed)
        LOG.error(
            "%s cannot run %s (%s); moved it to %s", self._title, claimed.name, reason, target
        )


def read_job(path: Path) -> Job:
    """Read a job file; raise ``InvalidJobError`` if it cannot be run."""
    try:
        job = parse_job(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidJobError(f"cannot read it: {exc}") from exc
    if f"{job.id}.json" != path.name:
        raise InvalidJobError(f"its id {job.id!r} does not match its file name")
    return job


class Reporter(cotyledon.Service):
    """Logs the progress of the jobs every half second, when it has changed.

    It keeps the default ``reload()``: on reload its worker stops and the
    master starts a new one.
    """

    name = "Reporter"
    interval = 0.5

    def __init__(self, worker_id: WorkerId, spool_root: str) -> None:
        super().__init__(worker_id)
        self._spool = Spool(Path(spool_root))
        self._stopping = threading.Event()

    def run(self) -> None:
        LOG.info("Reporter ready (pid %d)", os.getpid())
        last = None
        while not self._stopping.wait(self.interval):
            counts = self._spool.counts()
            if counts == last:
                continue
            last = counts
            LOG.info(
                "progress: %d/%d jobs done, %d in hand, %d waiting, %d failed",
                counts.done,
                counts.total,
                counts.in_hand,
                counts.waiting,
                counts.failed,
            )

    def terminate(self) -> None:
        self._stopping.set()
