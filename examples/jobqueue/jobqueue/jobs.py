"""Jobs: their file format and the work they stand for.

A job file is a small JSON object::

    {"id": "job-00042", "kind": "zlib", "size": 262144, "seed": 42}

``kind`` is ``sha256`` (hash the data) or ``zlib`` (compress it). The data
is ``size`` bytes derived from ``seed``, so the same job always gives the
same result, and anyone can check a result by running the job again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import zlib
from typing import Any

KINDS = ("sha256", "zlib")
MAX_SIZE = 64 * 1024 * 1024
MAX_SEED = 2**64 - 1
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

# Maps each byte to one of 16 letters: the data then carries 4 bits of
# entropy per byte, which zlib can compress to a bit more than half.
_LETTERS = bytes(b"abcdefghijklmnop"[byte & 0x0F] for byte in range(256))


class InvalidJobError(ValueError):
    """A job file that cannot be run."""


@dataclasses.dataclass(frozen=True)
class Job:
    id: str
    kind: str
    size: int
    seed: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)


def parse_job(text: str) -> Job:
    """Return the job that a job file's text describes.

    Raises ``InvalidJobError`` if the text is not a valid job.
    """
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidJobError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise InvalidJobError(f"expected a JSON object, got {type(raw).__name__}")
    job_id = raw.get("id")
    kind = raw.get("kind")
    size = raw.get("size")
    seed = raw.get("seed")
    if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
        raise InvalidJobError(
            f"invalid id {job_id!r}: expected 1 to 64 letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    if kind not in KINDS:
        raise InvalidJobError(f"invalid kind {kind!r}: expected one of {', '.join(KINDS)}")
    # JSON true would otherwise pass as 1, because bool is a subclass of int.
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
        raise InvalidJobError(f"invalid size {size!r}: expected an integer from 0 to {MAX_SIZE}")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED:
        raise InvalidJobError(f"invalid seed {seed!r}: expected an integer from 0 to {MAX_SEED}")
    return Job(id=job_id, kind=str(kind), size=size, seed=seed)


def job_data(seed: int, size: int) -> bytes:
    """Return the ``size`` bytes of a job's data, the same on every run."""
    stream = hashlib.shake_256(seed.to_bytes(8, "big")).digest(size)
    return stream.translate(_LETTERS)


def run_job(job: Job) -> dict[str, Any]:
    """Run a job and return the fields of its result file."""
    data = job_data(job.seed, job.size)
    result: dict[str, Any] = dataclasses.asdict(job)
    if job.kind == "sha256":
        result["sha256"] = hashlib.sha256(data).hexdigest()
    else:
        compressed = zlib.compress(data, 6)
        result["compressed_size"] = len(compressed)
        result["crc32"] = zlib.crc32(compressed)
    return result
