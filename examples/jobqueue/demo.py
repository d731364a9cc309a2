"""Unattended demo of the jobqueue example, run by ``make demo``.

It submits jobs to a spool in a temporary directory, starts the application
(``python -m jobqueue``) in a session of its own and prints its log as it
goes, then drives it through its lifecycle:

1. waits for the workers to start and for some jobs to be done;
2. changes ``config.json`` and sends SIGHUP to the master: each Processor
   worker rereads the file, and the Reporter worker is replaced;
3. sends SIGKILL to a Processor worker, preferably one with a job in hand,
   and waits for the master to start its replacement with the same worker
   id, which returns the job the killed worker left;
4. waits for every job to be done, sends SIGTERM to the master and waits
   for it to exit.

Last, it counts the results and the ledger lines: it exits 0 only if every
job was done exactly once and the master exited with status 0. The demo
checks the application from the outside, through its processes, its log
and its spool, and imports none of its code.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO
from typing import TypeVar

HERE = Path(__file__).resolve().parent

JOBS = 200
WORKERS = 4
MIN_SIZE = 64 * 1024
MAX_SIZE = 1024 * 1024
# Slow enough at first that the reload and the kill happen while many jobs
# are still waiting.
FIRST_CONFIG = {"pause": 0.1, "label": "first pass"}
SECOND_CONFIG = {"pause": 0.03, "label": "after reload"}
DONE_BEFORE_RELOAD = 40

START_TIMEOUT = 15.0
PROGRESS_TIMEOUT = 20.0
RELOAD_TIMEOUT = 10.0
VICTIM_SEARCH = 3.0
RESPAWN_TIMEOUT = 10.0
ALL_DONE_TIMEOUT = 30.0
EXIT_TIMEOUT = 15.0
POLL = 0.01

WORKER_TITLE = re.compile(r"\b(Processor|Reporter) worker\((\d+)\)")
PROCESSOR_READY = re.compile(r"Processor\((\d+)\) ready \(pid (\d+)")
REPORTER_READY = re.compile(r"Reporter ready \(pid (\d+)\)")

T = TypeVar("T")


class DemoFailure(Exception):
    """A step of the demo did not happen as it should."""


class Console:
    """Prints the demo's own lines and the application's, one at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def say(self, message: str) -> None:
        self._print(f"demo | {message}")

    def app(self, line: str) -> None:
        self._print(f"  app | {line}")

    def _print(self, text: str) -> None:
        with self._lock:
            print(text, flush=True)


class AppLog:
    """The application's output, kept line by line as it arrives."""

    def __init__(self, stream: IO[bytes], console: Console) -> None:
        self._stream = stream
        self._console = console
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._pump, name="app-log", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        """Wait for the end of the output; True if it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def mark(self) -> int:
        """Return the current end of the log, for searches of later lines only."""
        with self._lock:
            return len(self._lines)

    def matches(self, pattern: re.Pattern[str], since: int = 0) -> list[re.Match[str]]:
        with self._lock:
            lines = self._lines[since:]
        return [m for m in (pattern.search(line) for line in lines) if m is not None]

    def _pump(self) -> None:
        for raw in self._stream:
            line = raw.decode("utf-8", errors="replace").rstrip("\n")
            with self._lock:
                self._lines.append(line)
            self._console.app(line)


class Spool:
    """Paths of the spool layout (documented in jobqueue/spool.py) that the demo uses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.claimed = root / "claimed"
        self.done = root / "done"
        self.failed = root / "failed"
        self.ledger = root / "ledger"

    def submit(self, jobs: list[dict[str, object]]) -> None:
        self.incoming.mkdir(parents=True, exist_ok=True)
        for job in jobs:
            # Renamed into place, so that no worker reads a half-written job.
            temporary = self.incoming / f".{job['id']}.tmp"
            temporary.write_text(json.dumps(job) + "\n", encoding="utf-8")
            os.replace(temporary, self.incoming / f"{job['id']}.json")

    def in_hand(self, worker_id: int) -> list[str]:
        return job_files(self.claimed / str(worker_id))

    def pending(self) -> list[str]:
        """Jobs waiting or in hand."""
        found = job_files(self.incoming)
        if self.claimed.is_dir():
            for directory in sorted(self.claimed.iterdir()):
                found.extend(job_files(directory))
        return found


def job_files(directory: Path) -> list[str]:
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(n for n in names if n.endswith(".json") and not n.startswith("."))


def write_config(path: Path, config: dict[str, object]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(config) + "\n", encoding="utf-8")
    os.replace(temporary, path)


def make_jobs(count: int) -> list[dict[str, object]]:
    # A fixed seed: every run of the demo submits the same jobs.
    rng = random.Random(20240601)
    return [
        {
            "id": f"job-{number:05d}",
            "kind": rng.choice(("sha256", "zlib")),
            "size": rng.randint(MIN_SIZE, MAX_SIZE),
            "seed": rng.getrandbits(64),
        }
        for number in range(count)
    ]


# Processes, read from /proc.


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """Return (state, parent pid, session id) of a process, or None if it has exited."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name, in parentheses, may itself hold spaces and ")".
    fields = text[text.rindex(")") + 2 :].split()
    return fields[0], int(fields[1]), int(fields[3])


def all_pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def children_of(pid: int) -> list[int]:
    """Return the pids of the child processes of ``pid``."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return []
    found: set[int] = set()
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as stream:
                found.update(int(child) for child in stream.read().split())
        except FileNotFoundError:
            # A kernel without /proc/<pid>/task/<tid>/children: compare
            # every process's parent instead.
            return [p for p in all_pids() if (stat := proc_stat(p)) is not None and stat[1] == pid]
    return sorted(found)


def title_of(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return stream.read().replace(b"\0", b" ").decode("utf-8", errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def workers_of(master_pid: int) -> dict[tuple[str, int], int]:
    """Map (service name, worker id) to pid for the live workers of a master."""
    workers = {}
    for pid in children_of(master_pid):
        match = WORKER_TITLE.search(title_of(pid))
        if match:
            workers[match.group(1), int(match.group(2))] = pid
    return workers


def session_members(session_id: int) -> list[int]:
    """Return the pids of a session's processes, except zombies, which are already dead."""
    members = []
    for pid in all_pids():
        stat = proc_stat(pid)
        if stat is not None and stat[2] == session_id and stat[0] != "Z":
            members.append(pid)
    return members


class Demo:
    def __init__(self, workdir: Path, console: Console) -> None:
        self.workdir = workdir
        self.console = console
        self.config_path = workdir / "config.json"
        self.spool = Spool(workdir / "spool")
        self.process: subprocess.Popen[bytes] | None = None
        self.log: AppLog | None = None
        self.jobs: list[dict[str, object]] = []
        self.session_ended = False

    @property
    def master_pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exit_status(self) -> int | None:
        return None if self.process is None else self.process.returncode

    def wait_until(self, description: str, timeout: float, check: Callable[[], T | None]) -> T:
        """Poll ``check`` until it returns something other than None."""
        deadline = time.monotonic() + timeout
        while True:
            value = check()
            if value is not None:
                return value
            if self.process is not None and self.process.poll() is not None:
                raise DemoFailure(
                    f"the application exited with status {self.process.returncode} "
                    f"while the demo waited for {description}"
                )
            if time.monotonic() >= deadline:
                raise DemoFailure(f"timed out after {timeout:.0f} s waiting for {description}")
            time.sleep(POLL)

    def wait_for_lines(
        self, description: str, timeout: float, pattern: re.Pattern[str], count: int, since: int = 0
    ) -> list[re.Match[str]]:
        assert self.log is not None
        log = self.log

        def check() -> list[re.Match[str]] | None:
            found = log.matches(pattern, since)
            return found if len(found) >= count else None

        return self.wait_until(description, timeout, check)

    def run(self) -> bool:
        say = self.console.say
        self.jobs = make_jobs(JOBS)
        write_config(self.config_path, FIRST_CONFIG)
        self.spool.submit(self.jobs)
        say(f"submitted {len(self.jobs)} jobs to {self.spool.root}")

        self.start()
        self.wait_for_lines(
            f"{WORKERS} Processor workers to start", START_TIMEOUT, PROCESSOR_READY, WORKERS
        )
        self.wait_for_lines("the Reporter worker to start", START_TIMEOUT, REPORTER_READY, 1)
        say(f"the master (pid {self.master_pid}) runs its workers: {self.describe_workers()}")

        def some_done() -> int | None:
            done = len(job_files(self.spool.done))
            return done if done >= DONE_BEFORE_RELOAD else None

        done = self.wait_until(f"{DONE_BEFORE_RELOAD} jobs to be done", PROGRESS_TIMEOUT, some_done)
        say(f"{done} jobs done")

        self.reload()
        self.kill_and_replace_a_worker()

        def all_done() -> bool | None:
            # Pending jobs are listed first, because once the replacement has
            # started a job only moves from pending to done or failed.
            if self.spool.pending():
                return None
            finished = len(job_files(self.spool.done)) + len(job_files(self.spool.failed))
            return True if finished >= JOBS else None

        self.wait_until(f"all {JOBS} jobs to be done", ALL_DONE_TIMEOUT, all_done)
        say(f"all {JOBS} jobs are done; sending SIGTERM to the master")
        status = self.stop()
        return self.tally(status)

    def start(self) -> None:
        env = dict(os.environ)
        path = [str(HERE), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
        env["PYTHONPATH"] = os.pathsep.join(path)
        env["PYTHONUNBUFFERED"] = "1"
        command = [
            sys.executable,
            "-m",
            "jobqueue",
            "--spool",
            str(self.spool.root),
            "--workers",
            str(WORKERS),
        ]
        self.console.say("starting: " + " ".join(command[1:]))
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=self.workdir,
            # A session of its own: a Ctrl-C in the demo's terminal does not
            # reach the application, and the demo can find every process the
            # application started by its session id.
            start_new_session=True,
        )
        assert self.process.stdout is not None
        self.log = AppLog(self.process.stdout, self.console)
        self.log.start()

    def describe_workers(self) -> str:
        workers = workers_of(self.master_pid)
        return ", ".join(
            f"{service}({worker_id}) pid {pid}"
            for (service, worker_id), pid in sorted(workers.items())
        )

    def reload(self) -> None:
        assert self.log is not None
        say = self.console.say
        label = str(SECOND_CONFIG["label"])
        write_config(self.config_path, SECOND_CONFIG)
        say(f"config.json now contains {json.dumps(SECOND_CONFIG)}; sending SIGHUP to the master")
        since = self.log.mark()
        os.kill(self.master_pid, signal.SIGHUP)
        reread = re.compile(r"Processor\((\d+)\) reread .* label " + re.escape(repr(label)))

        def all_reread() -> bool | None:
            worker_ids = {m[1] for m in self.log_matches(reread, since)}
            return True if len(worker_ids) >= WORKERS else None

        self.wait_until(
            f"the {WORKERS} Processor workers to log label {label!r}", RELOAD_TIMEOUT, all_reread
        )
        say(f"each Processor worker reread the config and logged label {label!r}")
        matches = self.wait_for_lines(
            "the Reporter worker to be replaced", RELOAD_TIMEOUT, REPORTER_READY, 1, since
        )
        say(
            "the Reporter worker, which keeps the default reload(), was replaced: "
            f"pid {matches[0][1]}"
        )

    def log_matches(self, pattern: re.Pattern[str], since: int) -> list[re.Match[str]]:
        assert self.log is not None
        return self.log.matches(pattern, since)

    def kill_and_replace_a_worker(self) -> None:
        assert self.log is not None
        say = self.console.say

        def processors() -> dict[int, int]:
            workers = workers_of(self.master_pid)
            return {wid: pid for (service, wid), pid in workers.items() if service == "Processor"}

        # A worker with a job in hand leaves its replacement something to
        # take back. If every worker is between jobs each time the demo
        # looks, the demo kills one anyway.
        deadline = time.monotonic() + VICTIM_SEARCH
        jobs_in_hand: list[str] = []
        while True:
            pids = processors()
            candidates = [(wid, pid, self.spool.in_hand(wid)) for wid, pid in sorted(pids.items())]
            busy = [candidate for candidate in candidates if candidate[2]]
            if busy:
                worker_id, victim, jobs_in_hand = busy[0]
                break
            if time.monotonic() >= deadline:
                if not candidates:
                    raise DemoFailure(f"the master, pid {self.master_pid}, has no Processor worker")
                worker_id, victim, _ = candidates[0]
                break
            time.sleep(0.002)
        if f"Processor worker({worker_id})" not in title_of(victim):
            raise DemoFailure(f"Processor worker {worker_id}, pid {victim}, exited on its own")
        since = self.log.mark()
        os.kill(victim, signal.SIGKILL)
        in_hand = (
            f"it had {', '.join(jobs_in_hand)} in hand a moment ago"
            if jobs_in_hand
            else "it was idle"
        )
        say(f"sent SIGKILL to Processor worker {worker_id}, pid {victim} ({in_hand})")

        ready = re.compile(rf"Processor\({worker_id}\) ready \(pid (\d+)")

        def replaced() -> int | None:
            new_pid = workers_of(self.master_pid).get(("Processor", worker_id))
            started = {int(m[1]) for m in self.log_matches(ready, since)}
            return new_pid if new_pid is not None and new_pid in started - {victim} else None

        new_pid = self.wait_until(
            f"a new Processor worker {worker_id} to replace pid {victim}",
            RESPAWN_TIMEOUT,
            replaced,
        )
        say(f"the master started a replacement Processor worker {worker_id}: pid {new_pid}")
        found = re.compile(rf"Processor\({worker_id}\) found (\S+), left by an earlier")
        recovered = [m[1] for m in self.log_matches(found, since)]
        if recovered:
            say(f"the replacement took back what the killed worker left: {', '.join(recovered)}")
        else:
            say("the killed worker had no job in hand: nothing to take back")

    def stop(self) -> int:
        assert self.process is not None
        assert self.log is not None
        os.kill(self.master_pid, signal.SIGTERM)
        try:
            status = self.process.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise DemoFailure(
                f"the master did not exit within {EXIT_TIMEOUT:.0f} s of SIGTERM"
            ) from None
        if not self.log.join(5.0):
            raise DemoFailure("the application's output stayed open after the master exited")
        self.console.say(f"the master exited with status {status}")
        leftovers = self.application_processes()
        if leftovers:
            raise DemoFailure(f"processes of the application outlived the master: {leftovers}")
        self.session_ended = True
        return status

    def application_processes(self) -> list[int]:
        """Return the pids of the live processes of the application's session, except the master."""
        assert self.process is not None
        # Workers have process groups of their own but stay in the session
        # of the master, whose id is the master's pid. Linux does not reuse
        # a pid while it is an unreaped child or the id of a live session.
        # So if another process has that pid now, the session has ended.
        if self.process.returncode is not None and proc_stat(self.master_pid) is not None:
            return []
        return [pid for pid in session_members(self.master_pid) if pid != self.master_pid]

    def tally(self, status: int | None) -> bool:
        submitted = {str(job["id"]): job for job in self.jobs}
        results: dict[str, dict[str, object]] = {}
        bad_results = []
        for name in job_files(self.spool.done):
            job_id = name.removesuffix(".json")
            try:
                result = json.loads((self.spool.done / name).read_text(encoding="utf-8"))
            except ValueError:
                bad_results.append(job_id)
                continue
            job = submitted.get(job_id)
            if job is not None and any(result.get(key) != value for key, value in job.items()):
                bad_results.append(job_id)
            results[job_id] = result

        ledger: Counter[str] = Counter()
        if self.spool.ledger.is_dir():
            for path in sorted(self.spool.ledger.iterdir()):
                for line in path.read_text(encoding="utf-8").splitlines():
                    if line.strip():
                        ledger[line.split()[0]] += 1

        duplicates = sorted(job_id for job_id, n in ledger.items() if n > 1)
        missing = sorted(set(submitted) - set(results))
        unexpected = sorted((set(results) | set(ledger)) - set(submitted))
        unledgered = sorted(set(results) - set(ledger))
        failed = job_files(self.spool.failed)
        labels = Counter(str(result.get("label")) for result in results.values())

        rows = [
            ("jobs submitted", len(submitted), None),
            ("results present", len(results), None),
            ("ledger lines", sum(ledger.values()), None),
            ("done twice or more", len(duplicates), duplicates),
            ("missing", len(missing), missing),
            ("results not matching their job", len(bad_results), bad_results),
            ("unknown ids", len(unexpected), unexpected),
            ("results without a ledger line", len(unledgered), unledgered),
            ("rejected as invalid", len(failed), failed),
        ]
        say = self.console.say
        say("tally:")
        for name, value, ids in rows:
            listed = f"  {', '.join(ids[:10])}{' ...' if len(ids) > 10 else ''}" if ids else ""
            say(f"  {name:<32} {value:>5}{listed}")
        for label, count in sorted(labels.items()):
            say(f"  {'results labelled ' + repr(label):<32} {count:>5}")
        status_text = "none: it did not exit" if status is None else str(status)
        say(f"  {'master exit status':<32} {status_text:>5}")
        ok = (
            status == 0
            and len(results) == len(submitted)
            and not any(ids for _, _, ids in rows if ids is not None)
        )
        say("PASS: every job was done exactly once" if ok else "FAIL: see the tally above")
        return ok

    def cleanup(self) -> None:
        """End whatever the demo started and is still running."""
        if self.process is None or self.session_ended:
            return
        if self.process.poll() is None:
            self.console.say(f"killing the master, pid {self.master_pid}")
            os.kill(self.master_pid, signal.SIGKILL)
        for pid in self.application_processes():
            self.console.say(f"killing leftover process {pid}: {title_of(pid)}")
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            self.process.wait(EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.console.say(f"the master, pid {self.master_pid}, did not die")
        if self.log is not None:
            self.log.join(5.0)
        self.session_ended = True


def main() -> int:
    console = Console()
    workdir = Path(tempfile.mkdtemp(prefix="jobqueue-demo-"))
    demo = Demo(workdir, console)
    ok = False
    try:
        ok = demo.run()
    except DemoFailure as exc:
        console.say(f"FAIL: {exc}")
        demo.cleanup()
        demo.tally(demo.exit_status())
    finally:
        demo.cleanup()
        if ok:
            shutil.rmtree(workdir)
        else:
            console.say(f"the spool is kept for inspection in {workdir}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
