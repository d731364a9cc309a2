"""Workers that the master forks itself, without multiprocessing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest
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


def test_worker_stdin_from_master_pipe(start_app: StartApp) -> None:
    app = start_app("pipe_stdin_app")
    assert app.wait_event("master_stdin")["line"] == "first line\n"
    run = app.wait_event("run")

    assert run["stdin"] == "/dev/null"
    assert run["stdin_fileno"] == 0
    assert run["stdin_seekable"] is True
    assert run["stdin_read"] == ""
    assert run["cat_status"] == 0
    assert run["cat_output"] == ""
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


def test_worker_stdin_without_master_stdin(start_app: StartApp) -> None:
    app = start_app("no_stdin_app")
    run = app.wait_event("run")

    assert run["stdin"] == "/dev/null"
    assert run["stdin_read"] == ""
    # The programs that the worker runs inherit /dev/null as well.
    assert run["cat_status"] == 0
    assert run["cat_output"] == ""
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


# A master whose /dev/null for its workers lands on descriptor 0. Its child
# prints what cat reads from the standard input that it inherits, then what
# the child itself reads.
_KIT_ON_FD_0 = textwrap.dedent(
    """
    import os, subprocess, sys
    from cotyledon.runtime import _launch

    os.close(0)
    kit = _launch._ForkKit()
    print(kit.stdin_fd, flush=True)
    pid = os.fork()
    if pid == 0:
        kit.stdin_in_child()
        cat = subprocess.run(["cat"], capture_output=True, timeout=10, check=False)
        print(cat.returncode, repr(cat.stdout), sys.stdin.fileno(), repr(sys.stdin.read()))
        sys.stdout.flush()
        os._exit(0)
    os.waitpid(pid, 0)
    """
)


def test_fork_kit_devnull_on_descriptor_0() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _KIT_ON_FD_0], capture_output=True, timeout=30, check=True
    )
    kit_fd, child = result.stdout.decode().splitlines()
    cat_status, cat_output, stdin_fileno, stdin_read = child.split()

    assert kit_fd == "0"
    assert cat_status == "0"
    assert cat_output == "b''"
    assert stdin_fileno == "0"
    assert stdin_read == "''"


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


@pytest.mark.parametrize(
    ("error", "message"),
    [
        ("os", "BlockingIOError: [Errno 11] fork refused once by the test"),
        ("runtime", "RuntimeError: fork refused once by the test"),
    ],
)
def test_failed_fork_fails_its_slot_only(start_app: StartApp, error: str, message: str) -> None:
    app = start_app("fork_fails_once_app", env={"FORK_ERROR": error})
    runs = app.wait_events("run", 4)

    assert sorted(run["worker_id"] for run in runs) == [0, 1, 2, 3]
    log = app.log_text()
    assert f"Failed to start worker probe(1): {message}" in log
    assert log.count("Failed to start worker") == 1
    # The master files each pid under the worker that runs in it.
    started = {
        run["worker_id"]: log.index(f"Started worker probe({run['worker_id']}) with pid {run.pid}")
        for run in runs
    }
    # The replacement of the slot whose fork failed starts after the others.
    # Their run() may still come later on a busy machine.
    assert started[1] > max(started[0], started[2], started[3])
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


def test_forked_workers_report_without_a_thread(start_app: StartApp) -> None:
    # The master reads no report until its last fork: forty ready reports
    # wait in the channel, with no thread to send them later.
    app = start_app("thread_probe_app")
    app.wait_ready()
    threads = app.wait_events("threads", 40)

    for event in threads:
        assert event["names"] == ["MainThread", "cotyledon-run", "cotyledon-watch"], event
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


@pytest.mark.skipif(not hasattr(os, "pidfd_open"), reason="needs pidfd_open (Linux 5.3)")
def test_forked_worker_has_one_master_pidfd(start_app: StartApp) -> None:
    # One pidfd serves both the master watch and parent_process().sentinel.
    app = start_app("pidfd_probe_app")
    counts = [event["count"] for event in app.wait_events("pidfds", 2)]

    assert counts == [1, 1]
    app.send_signal(signal.SIGTERM)
    assert app.wait_exit() == 0


def test_master_imports_leave_fork_costs_out() -> None:
    # random reseeds itself in each forked child. The others make the master
    # bigger, and so every fork slower, for work that most masters never do.
    # subprocess is not checked, because platform imports it on Python 3.10.
    code = (
        "import sys, cotyledon\n"
        "print(' '.join(m for m in ('random', 'multiprocessing.util', 'json')"
        " if m in sys.modules))\n"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert out.stdout.split() == []
