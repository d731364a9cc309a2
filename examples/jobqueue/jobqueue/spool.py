"""The spool: the directory tree through which jobs move.

::

    spool/
      incoming/<id>.json       jobs waiting for a worker
      claimed/<worker id>/     the job a worker has in hand, and its
                               result while it is being written
      done/<id>.json           results
      failed/<id>.json         job files that could not be read
      ledger/worker-<id>.log   one line per job a worker finished

A job moves from one directory to the next with ``os.rename``, which is
atomic within a file system: a job file is always in exactly one place,
and of two workers that rename the same file only one succeeds. Files whose
names start with a dot are being written, and the other processes ignore
them.

Nothing here calls fsync: the data of a killed process stays in the page
cache and reaches the disk anyway, and surviving a process being killed is
what the spool is for. Surviving a machine crash would need fsync.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .jobs import Job

JOB_SUFFIX = ".json"


@dataclasses.dataclass(frozen=True)
class Counts:
    """Number of jobs in each state."""

    waiting: int
    in_hand: int
    done: int
    failed: int

    @property
    def total(self) -> int:
        return self.waiting + self.in_hand + self.done + self.failed


class Spool:
    """Directories of the spool rooted at ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.incoming = root / "incoming"
        self.claimed = root / "claimed"
        self.done = root / "done"
        self.failed = root / "failed"
        self.ledger = root / "ledger"

    def __repr__(self) -> str:
        return f"<Spool {self.root}>"

    def create(self) -> None:
        for path in (self.incoming, self.claimed, self.done, self.failed, self.ledger):
            path.mkdir(parents=True, exist_ok=True)

    def claimed_dir(self, worker_id: int) -> Path:
        return self.claimed / str(worker_id)

    def ledger_file(self, worker_id: int) -> Path:
        return self.ledger / f"worker-{worker_id}.log"

    def submit(self, job: Job) -> Path:
        """Write a new job into ``incoming/`` so that no worker reads it half-written."""
        target = self.incoming / f"{job.id}{JOB_SUFFIX}"
        write_atomically(self.incoming / f".{job.id}.tmp", target, job.to_json() + "\n")
        return target

    def claim(self, worker_id: int) -> Path | None:
        """Move the first waiting job into the worker's own directory.

        Returns its new path, or None when no job is waiting.
        """
        target_dir = self.claimed_dir(worker_id)
        # Without it, every rename below would fail as if another worker
        # had taken the job.
        target_dir.mkdir(parents=True, exist_ok=True)
        for name in job_names(self.incoming):
            target = target_dir / name
            try:
                os.rename(self.incoming / name, target)
            except FileNotFoundError:
                # Another worker renamed it first.
                continue
            return target
        return None

    def finish(self, claimed: Path, worker_id: int, result: dict[str, Any], note: str) -> None:
        """Record the result of a claimed job, then release the claim.

        The job counts as done once its result file is in ``done/``. The
        ledger line (the job id, then ``note``) and the removal of the claim
        follow, and ``recover`` completes them if the worker dies in between.
        """
        name = claimed.name
        temporary = claimed.parent / f".{name}.result"
        write_atomically(temporary, self.done / name, json.dumps(result, sort_keys=True) + "\n")
        append_line(self.ledger_file(worker_id), f"{job_id_of(name)} {note}")
        claimed.unlink()

    def reject(self, claimed: Path) -> Path:
        """Move a claimed job file that cannot be run to ``failed/``."""
        target = self.failed / claimed.name
        os.rename(claimed, target)
        return target

    def recover(self, worker_id: int, note: str) -> Iterator[tuple[str, str]]:
        """Undo what a killed worker with this id left in its directory.

        Must run before the worker claims anything, and only while no other
        process has this worker id. Yields ``(file name, what was done)``.
        """
        directory = self.claimed_dir(worker_id)
        directory.mkdir(parents=True, exist_ok=True)
        ledger = self.ledger_file(worker_id)
        end_last_line(ledger)
        for entry in sorted(directory.iterdir()):
            name = entry.name
            if name.startswith("."):
                entry.unlink()
                yield name, "removed a partial result"
            elif (self.done / name).exists():
                # The result was written but the worker died before it
                # released the claim: the job is done, and running it again
                # would do it twice.
                job_id = job_id_of(name)
                if job_id not in ledger_ids(ledger):
                    append_line(ledger, f"{job_id} {note}")
                entry.unlink()
                yield name, "already done; released its claim"
            else:
                os.rename(entry, self.incoming / name)
                yield name, "returned it to incoming/"

    def counts(self) -> Counts:
        """Count the jobs in each state.

        A job that moves on while the directories are listed may be
        counted twice or missed; the next count is right again.
        """
        in_hand = 0
        with contextlib.suppress(FileNotFoundError):
            for directory in self.claimed.iterdir():
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    in_hand += len(job_names(directory))
        return Counts(
            waiting=len(job_names(self.incoming)),
            in_hand=in_hand,
            done=len(job_names(self.done)),
            failed=len(job_names(self.failed)),
        )


def job_names(directory: Path) -> list[str]:
    """Return the sorted job file names of a directory, or [] if it does not exist."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.endswith(JOB_SUFFIX) and not n.startswith("."))


def write_atomically(temporary: Path, target: Path, text: str) -> None:
    """Write ``text`` to ``temporary``, then rename it to ``target``.

    Readers of ``target`` see either nothing or the whole text.
    """
    with open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)
    os.replace(temporary, target)


def job_id_of(name: str) -> str:
    """Return the job id of a job file name."""
    return name.removesuffix(JOB_SUFFIX)


def append_line(path: Path, line: str) -> None:
    """Append one line to ``path`` with a single ``write``.

    With O_APPEND, each write lands at the end of the file, whatever else
    was written since the file was opened.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def end_last_line(path: Path) -> None:
    """Add the newline that a writer killed mid-line did not write."""
    try:
        with open(path, "rb+") as stream:
            if stream.seek(0, os.SEEK_END) == 0:
                return
            stream.seek(-1, os.SEEK_END)
            if stream.read(1) != b"\n":
                stream.write(b"\n")
    except FileNotFoundError:
        return


def ledger_ids(path: Path) -> list[str]:
    """Return the job ids of a ledger file (the first word of each line), in order."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line.split()[0] for line in text.splitlines() if line.strip()]
