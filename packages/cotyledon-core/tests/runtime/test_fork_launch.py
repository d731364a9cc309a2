"""Workers that the master forks itself, without multiprocessing."""

from __future__ import annotations

import signal

from runtime_support import StartApp
from runtime_support import is_running


def test_forked_worker_uses_a_queue_the_master_used(start_app: StartApp) -> None:
    app = start_app("mp_queue_app")
    assert app.wait_event("master_queue")["echoed"] == "from the master"
    runs = app.wait_events("run", 2)

    assert sorted(run["echoed"] for run in runs) == ["from worker 0", "from worker 1"]
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


def test_forked_worker_reads_stdin_from_devnull(start_app: StartApp) -> None:
    app = start_app("mp_queue_app")
    run = app.wait_event("run")

    assert run["stdin"] == "/dev/null"
    assert run["stdin_read"] == ""
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


def test_master_leaves_a_hook_child_to_its_owner(start_app: StartApp) -> None:
    app = start_app("hook_child_app")
    child = app.wait_event("hook_child")["pid"]
    # The child exits at once, and stays a zombie until a later death of
    # the crasher makes the hook wait for it: the master reaps that worker
    # meanwhile, by pid, and leaves the child's status to the hook. Had the
    # master reaped the child, the hook would read 0.
    status = app.wait_event("hook_child_status")

    assert status["code"] == 7
    assert not is_running(child)
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0
