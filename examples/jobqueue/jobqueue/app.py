"""The command line: set up the spool, then run the services until stopped."""

from __future__ import annotations

import argparse
import functools
import logging
import multiprocessing
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

import cotyledon

from .config import Config
from .config import ConfigError
from .config import config_path
from .config import load_config
from .config import write_config
from .jobs import KINDS
from .jobs import Job
from .services import Processor
from .services import Reporter
from .spool import Spool
from .spool import job_names

LOG = logging.getLogger(__name__)

LOG_FORMAT = "%(asctime)s.%(msecs)03d %(processName)s[%(process)d] %(levelname)s %(message)s"
MIN_JOB_SIZE = 64 * 1024
MAX_JOB_SIZE = 1024 * 1024
_NUMBERED_ID = re.compile(r"job-(\d+)\.json")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m jobqueue",
        description=(
            "Process the jobs of a spool directory with supervised worker processes. "
            "SIGHUP rereads config.json (next to the spool); SIGTERM finishes the jobs "
            "in hand and exits; Ctrl-C stops at once."
        ),
    )
    parser.add_argument("--spool", type=Path, required=True, help="the spool directory")
    parser.add_argument(
        "--jobs", type=int, default=0, metavar="N", help="submit N new jobs before starting"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=4,
        metavar="N",
        help="number of Processor workers (default 4)",
    )
    parser.add_argument(
        "--start-method",
        choices=multiprocessing.get_all_start_methods(),
        default=None,
        help="the multiprocessing start method of the workers (default: fork on POSIX)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every job")
    args = parser.parse_args(argv)
    if args.jobs < 0:
        parser.error("--jobs must be 0 or more")
    if args.workers < 1:
        parser.error("--workers must be 1 or more")
    return args


def submit_jobs(spool: Spool, count: int, rng: random.Random) -> list[Job]:
    """Submit ``count`` new jobs, numbered after those already in the spool."""
    directories = [spool.incoming, spool.done, spool.failed]
    if spool.claimed.is_dir():
        directories.extend(path for path in spool.claimed.iterdir() if path.is_dir())
    highest = -1
    for directory in directories:
        for name in job_names(directory):
            match = _NUMBERED_ID.fullmatch(name)
            if match:
                highest = max(highest, int(match.group(1)))
    jobs = []
    for number in range(highest + 1, highest + 1 + count):
        job = Job(
            id=f"job-{number:05d}",
            kind=rng.choice(KINDS),
            size=rng.randint(MIN_JOB_SIZE, MAX_JOB_SIZE),
            seed=rng.getrandbits(64),
        )
        spool.submit(job)
        jobs.append(job)
    return jobs


def log_reload(path: Path) -> None:
    """Log the configuration that the workers are about to reread (the master's on_reload hook)."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        LOG.warning("Reload requested, but the workers will keep their configuration: %s", exc)
        return
    LOG.info(
        "Reload requested: workers reread %s (pause %.3f s, label %r)",
        path,
        config.pause,
        config.label,
    )


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=LOG_FORMAT,
        datefmt="%H:%M:%S",
    )
    spool = Spool(args.spool.resolve())
    spool.create()
    path = config_path(spool.root)
    if not path.exists():
        write_config(path, Config())
        LOG.info("Wrote a default configuration to %s", path)
    try:
        config = load_config(path)
    except ConfigError as exc:
        raise SystemExit(
            f"jobqueue: {exc} (fix the file, or delete it to get the defaults)"
        ) from None
    if args.jobs:
        jobs = submit_jobs(spool, args.jobs, random.Random())
        LOG.info("Submitted %d jobs, %s to %s", len(jobs), jobs[0].id, jobs[-1].id)
    LOG.info(
        "Spool %s, %d Processor workers, pause %.3f s, label %r",
        spool.root,
        args.workers,
        config.pause,
        config.label,
    )

    context = None if args.start_method is None else multiprocessing.get_context(args.start_method)
    manager = cotyledon.ServiceManager(graceful_shutdown_timeout=10, mp_context=context)
    manager.add(Processor, workers=args.workers, args=(str(spool.root),))
    manager.add(Reporter, workers=1, args=(str(spool.root),))
    manager.register_hooks(on_reload=functools.partial(log_reload, path))
    manager.run()
