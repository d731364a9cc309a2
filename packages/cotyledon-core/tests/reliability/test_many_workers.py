"""Many workers start, run and stop cleanly."""

from __future__ import annotations

import signal

from conftest import StartApp
from reliability_support import TALLY
from reliability_support import check_nothing_left
from reliability_support import master_resources
from reliability_support import scaled
from reliability_support import wait_settled

from cotyledon_testkit._process_tree import read_command_line

WORKERS = scaled(128, 1024)
# The master holds two descriptors per worker (its sentinel and a pipe end)
# and a few of its own.
FDS_PER_WORKER = 2
OWN_FDS = 32


def test_many_workers_start_and_stop(start_app: StartApp) -> None:
    TALLY.scenarios.append(f"many_workers:{WORKERS}")
    app = start_app("many_workers_app", env={"RELIABILITY_WORKERS": str(WORKERS)})
    app.wait_ready(timeout=120)
    live = wait_settled(app, {"steady": WORKERS}, timeout=60)
    resources = master_resources(app.pid)
    titles = {read_command_line(pid) for pid in live.values()}
    expected = {f"_launch.py: steady worker({wid})" for wid in range(WORKERS)}

    app.send_signal(signal.SIGTERM)
    status = app.wait_exit(timeout=120)

    assert titles == expected
    assert resources.fds <= OWN_FDS + FDS_PER_WORKER * WORKERS
    assert status == 0
    check_nothing_left(app)
