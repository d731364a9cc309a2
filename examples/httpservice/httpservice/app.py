"""The command line: open the shared socket, then run the workers until stopped.

SIGHUP rereads the configuration file in the master, then replaces the
workers one at a time (``reload="rolling"``): for each worker, the master
starts a replacement, waits until it is ready, then stops the old worker
gracefully. At least ``--workers`` workers accept throughout. The other
policies also keep the connections in the backlog, so a reload fails no
request with them either, but they serve less well. ``"restart"`` stops
every worker at once, so requests wait for new workers to start, and
``"in-place"`` keeps the processes, so a reload could not bring new code or
restart a worker whose memory has grown.

A configuration file that fails to load cancels the reload: the workers
keep running with the configuration they have.
"""

from __future__ import annotations

import argparse
import functools
import logging
import multiprocessing
from collections.abc import Sequence
from pathlib import Path
from typing import Final
from typing import NoReturn

import cotyledon

from .config import ConfigError
from .config import ConfigSource
from .listener import LOOPBACK
from .listener import open_listener
from .listener import write_port_file
from .service import HttpWorker

LOG = logging.getLogger(__name__)

LOG_FORMAT: Final = "%(asctime)s %(processName)s[%(process)d] %(levelname)s %(message)s"

STARTUP_TIMEOUT: Final = 30.0
"""Seconds a new worker has to be ready. A rolling reload stops a
replacement that is late, and keeps the old workers."""

MAX_PORT: Final = 65535


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m httpservice",
        description=(
            f"Serve HTTP on {LOOPBACK} with supervised worker processes that share one "
            "listening socket. SIGHUP rereads the configuration and replaces the workers "
            "one at a time; SIGTERM lets each worker finish its requests and exits."
        ),
    )
    parser.add_argument(
        "--port",
        type=int,
        required=True,
        help="TCP port to listen on (0: a free port that the kernel picks)",
    )
    parser.add_argument(
        "--workers", type=int, default=4, metavar="N", help="number of workers (default 4)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        help='JSON configuration file, such as {"label": "blue"}, reread on SIGHUP',
    )
    parser.add_argument(
        "--port-file", type=Path, help="file to write the port to, once the socket listens"
    )
    args = parser.parse_args(argv)
    if not 0 <= args.port <= MAX_PORT:
        parser.error(f"--port must be from 0 to {MAX_PORT}, got {args.port}")
    if args.workers < 1:
        parser.error(f"--workers must be 1 or more, got {args.workers}")
    return args


def reload_config(source: ConfigSource) -> None:
    """Reread the configuration before the workers are replaced (the
    master's ``on_reload`` hook). Cancel the reload if it fails to load."""
    try:
        config = source.reload()
    except ConfigError as exc:
        raise cotyledon.CancelReload(f"the workers keep their configuration: {exc}") from exc
    LOG.info("Reload requested: new workers start with label %r", config.label)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    try:
        source = ConfigSource(args.config)
    except ConfigError as exc:
        raise SystemExit(f"httpservice: {exc}") from None

    # Before run(): every worker forked from now on inherits the socket.
    listener = open_listener(args.port)
    port = listener.getsockname()[1]
    if args.port_file is not None:
        write_port_file(args.port_file, port)
    LOG.info("Listening on http://%s:%d with %d workers", LOOPBACK, port, args.workers)

    # Fork, not spawn: a forked worker inherits the socket as it is.
    manager = cotyledon.ServiceManager(mp_context=multiprocessing.get_context("fork"))
    manager.add(
        HttpWorker,
        workers=args.workers,
        args=(listener, source),
        reload="rolling",
        startup_timeout=STARTUP_TIMEOUT,
    )
    manager.register_hooks(on_reload=functools.partial(reload_config, source))
    manager.run()
