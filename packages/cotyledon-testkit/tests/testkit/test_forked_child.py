"""A child forked from the test, that exits normally, leaves the files of
its parent's harness and notification socket in place."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

# Run in a fresh interpreter, because the forked child of a pytest process
# would run pytest's own exit code.
SCRIPT = """
import json, os, sys
from pathlib import Path
from cotyledon_testkit import ManagerProcess, NotifyReceiver

harness = ManagerProcess("harness_apps:sleepers", sys_path=[sys.argv[1]]).start()
harness.wait_ready()
receiver = NotifyReceiver()
named = NotifyReceiver(str(Path(sys.argv[2]) / "named.sock"))
paths = {
    "log": str(harness.log_path),
    "events": str(harness.log_path.parent / "events.sock"),
    "notify": receiver.address,
    "named": named.address,
}
pid = os.fork()
if pid == 0:
    sys.exit(0)
os.waitpid(pid, 0)
after_fork = {name: os.path.exists(path) for name, path in paths.items()}
mark = harness.mark()
harness.kill_worker("sleeper", 0)
harness.wait_worker_ready("sleeper", 0, after=mark)
harness.close()
receiver.close()
named.close()
after_close = {name: os.path.exists(path) for name, path in paths.items()}
print(json.dumps({"after_fork": after_fork, "after_close": after_close}))
"""


def test_forked_child_leaves_parent_files(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(Path(__file__).parent), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["after_fork"] == {"log": True, "events": True, "notify": True, "named": True}
    assert result["after_close"] == {"log": False, "events": False, "notify": False, "named": False}


STALLED_SCRIPT = """
import os, signal, threading
from cotyledon_testkit import NotifyReceiver

receiver = NotifyReceiver()
# Another thread holds the reader's lock at the fork, as the reader thread
# does while it reads a datagram.
lock_held, forked = threading.Event(), threading.Event()

def hold_lock():
    with receiver._reader._lock:
        lock_held.set()
        forked.wait()

holder = threading.Thread(target=hold_lock)
holder.start()
lock_held.wait()
pid = os.fork()
if pid == 0:
    signal.alarm(5)
    with receiver.stalled():
        pass
    os._exit(0)
forked.set()
holder.join()
_, status = os.waitpid(pid, 0)
receiver.close()
print(os.waitstatus_to_exitcode(status))
"""


def test_forked_child_leaves_stalled_block() -> None:
    done = subprocess.run(
        [sys.executable, "-c", STALLED_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0"]
