"""The benchmark's smoke mode, run as ``make test`` runs it.

It checks that every scenario measures this project and the three floors, and
that the report and the results are written, in a few seconds and without
cotyledon 2.2.0.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

OWN_FIGURES = (
    "startup_1",
    "startup_4",
    "worker_cpu_4",
    "scale_clean",
    "respawn_median",
    "respawn_max",
    "burst_all",
    "burst_spread",
    "shutdown",
    "reload",
    "idle_cpu",
    "idle_switches",
    "master_pss",
    "worker_pss",
    "worker_overhead",
    "crash_spawns",
    "crash_cpu",
    "crash_exit",
)


def test_smoke_mode_measures_every_scenario(tmp_path: Path) -> None:
    markdown = tmp_path / "BENCHMARKS.md"
    results_path = tmp_path / "results.json"

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--markdown",
            str(markdown),
            "--json",
            str(results_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(results_path.read_text())
    medians = results["medians"]
    missing = [key for key in OWN_FIGURES if medians.get(key, {}).get("this") is None]
    assert missing == [], result.stderr[-3000:]
    for floor in ("fork", "thread", "spawn"):
        assert medians["startup_4"][floor] is not None
        assert medians["worker_pss"][floor] is not None
    assert "2.2.0" not in medians["startup_1"]
    assert [run["error"] for run in results["runs"] if run["error"]] == []
    text = markdown.read_text()
    assert "## Targets" in text
    assert "| startup, N=4 (s) |" in text
    assert result.stdout.strip() == text.strip()
