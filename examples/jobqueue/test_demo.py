"""The demo, run as ``make demo`` runs it, as part of the test suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).parent / "demo.py"


def test_demo_does_every_job_once() -> None:
    result = subprocess.run(
        [sys.executable, str(DEMO)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "PASS: every job was done exactly once" in result.stdout
