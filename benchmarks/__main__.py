"""Run the benchmarks and write the table: ``python -m benchmarks [--smoke]``.

``make bench`` runs it with the interpreter of this project's virtual
environment and names cotyledon 2.2.0's with ``--baseline-python``. Each
repetition runs every scenario once per implementation, alternating the
implementations, so that the noise of a shared machine falls on all of
them alike.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks import scenarios
from benchmarks.driver import REPO
from benchmarks.driver import EventSocket
from benchmarks.driver import raise_own_file_limit
from benchmarks.scenarios import FORK
from benchmarks.scenarios import THIS
from benchmarks.scenarios import Bench
from benchmarks.scenarios import Implementation
from benchmarks.scenarios import Scenario
from benchmarks.scenarios import Settings

STEPS = ("startup", "respawn", "burst", "shutdown", "reload", "idle", "crash")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="one repetition at small sizes, without 2.2.0 unless named; writes no file "
        "unless named",
    )
    parser.add_argument(
        "--this-python",
        default=sys.executable,
        help="the interpreter of this project and the floors (default: this one)",
    )
    parser.add_argument("--baseline-python", help="the interpreter of a cotyledon 2.2.0 venv")
    parser.add_argument("--repetitions", type=int, help="override the number of repetitions")
    parser.add_argument("--only", help=f"comma-separated scenarios among {', '.join(STEPS)}")
    parser.add_argument("--markdown", type=Path, help="where to write the report")
    parser.add_argument("--json", type=Path, help="where to write the results")
    parser.add_argument(
        "--render", type=Path, help="write the report again from a results.json; run nothing"
    )
    options = parser.parse_args(argv)
    if not options.smoke:
        options.markdown = options.markdown or REPO / "BENCHMARKS.md"
        options.json = options.json or REPO / "benchmarks" / "results.json"
    return options


def steps(settings: Settings, only: set[str]) -> list[tuple[str, Scenario, bool]]:
    """(name, scenario, floors too) in the order of a repetition."""
    found: list[tuple[str, Scenario, bool]] = []
    if "startup" in only:
        found += [(f"startup N={n}", scenarios.startup(n), True) for n in settings.startup_sizes]
    found += [
        (name, scenario, floors)
        for name, scenario, floors in (
            ("respawn", scenarios.respawn, False),
            ("burst", scenarios.burst, False),
            ("shutdown", scenarios.shutdown, False),
            ("reload", scenarios.reload, False),
            ("idle", scenarios.idle, True),
            ("crash", scenarios.crash_loop, False),
        )
        if name in only
    ]
    return found


def run_all(
    bench: Bench, impls: Sequence[Implementation], plan: Sequence[tuple[str, Scenario, bool]]
) -> list[dict[str, Any]]:
    records = []
    repetitions = bench.settings.repetitions
    for repetition in range(repetitions):
        for name, scenario, floors in plan:
            for impl in impls:
                if not (impl.supervised or floors):
                    continue
                started = time.monotonic()
                outcome = scenario(bench, impl)
                elapsed = time.monotonic() - started
                records.append(
                    {
                        "repetition": repetition,
                        "scenario": name,
                        "implementation": impl.key,
                        "figures": outcome.figures,
                        "notes": outcome.notes,
                        "error": outcome.error,
                        "log_tail": outcome.log_tail,
                        "seconds": round(elapsed, 3),
                    }
                )
                summary = ", ".join(f"{k}={v:.4g}" for k, v in outcome.figures.items())
                if outcome.error:
                    summary = f"{summary} FAILED: {outcome.error}".strip()
                print(
                    f"[{repetition + 1}/{repetitions}] {name:<14} {impl.label:<16} "
                    f"{summary} ({elapsed:.1f} s)",
                    file=sys.stderr,
                    flush=True,
                )
    return records


def machine(impls: Sequence[Implementation]) -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    models = sorted(
        {line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")}
    )
    found: dict[str, Any] = {
        "cpu": ", ".join(models) or platform.processor(),
        "cpus": sum(line.startswith("processor") for line in cpuinfo),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "kernel": platform.release(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": _git("rev-parse", "--short", "HEAD"),
        "work_tree_modified": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "versions": {},
    }
    for impl in impls:
        if impl.supervised:
            distribution = "cotyledon-core" if impl.key == THIS else "cotyledon"
            found["versions"][impl.key] = subprocess.run(
                [
                    impl.python,
                    "-c",
                    f"import importlib.metadata as m; print(m.version({distribution!r}))",
                ],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.strip()
    return found


def _load_average() -> float:
    """Return the 1-minute load average, which shows how busy the shared machine was."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def _git(*args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        )
    except OSError:
        return ""
    return result.stdout.strip()


def render(
    results: dict[str, Any],
    values: report.Values,
    settings: Settings,
    impls: Sequence[Implementation],
    found: Sequence[report.Target],
) -> str:
    info = results["machine"]
    versions = ", ".join(f"{key}: {version}" for key, version in info["versions"].items())
    commit = info["commit"] + (" (modified work tree)" if info["work_tree_modified"] else "")
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (`python -m benchmarks`); the method is in",
        "[benchmarks/README.md](benchmarks/README.md). Every figure is the median of "
        f"{settings.repetitions} repetitions, in each of which the implementations ran "
        "one after the other; ratios are taken within each repetition, then their "
        "median. Lower is better everywhere.",
        "",
        "| machine | |",
        "|---|---|",
        f"| CPU | {info['cpu']} |",
        f"| CPUs | {info['cpus']} |",
        f"| Python | {info['python']} |",
        f"| kernel | {info['kernel']} |",
        f"| date | {info['date']} |",
        f"| commit | {commit} |",
        f"| versions | {versions} |",
        f"| load average (1 min) at start, end | {info['load_average']['start']:.2f}, "
        f"{info['load_average']['end']:.2f} |",
        f"| run time | {results['seconds']:.0f} s |",
        "",
        "## Medians",
        "",
        *report.medians_table(values, settings, impls),
        "",
        "## Targets",
        "",
        *report.targets_table(found),
        "",
        "## Every repetition",
        "",
        *report.repetitions_table(values, settings, impls),
    ]
    problems = [r for r in results["runs"] if r["error"] or r["notes"]]
    if problems:
        lines += ["", "## Failures and notes", ""]
        labels = {impl.key: impl.label for impl in impls}
        for record in problems:
            what = "; ".join(filter(None, [record["error"], *record["notes"]]))
            lines.append(
                f"- repetition {record['repetition'] + 1}, {record['scenario']}, "
                f"{labels[record['implementation']]}: {what}"
            )
            if record["error"] and record["log_tail"]:
                tail = record["log_tail"].splitlines()[-1]
                lines.append(f"  (last line of its output: `{tail}`)")
    return "\n".join(lines) + "\n"


_COMPILE_PATHS = """
import sysconfig
paths = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
print("\\n".join(sorted(paths)))
"""


def compile_bytecode(impls: Sequence[Implementation]) -> None:
    """Write the bytecode of every module that the measured processes import.

    Where ``PYTHONDONTWRITEBYTECODE`` is set, or where the installer did not
    compile what it installed (uv does not, by default), each process would
    otherwise compile those modules from source at every start, and the
    startup figures would measure the compiler instead.
    """
    local = [str(path) for path in sorted(REPO.glob("packages/*/src"))]
    local.append(str(REPO / "benchmarks"))
    for python in sorted({impl.python for impl in impls}):
        listed = subprocess.run(
            [python, "-c", _COMPILE_PATHS], capture_output=True, text=True, check=True
        )
        paths = [*listed.stdout.splitlines(), *local]
        # -j 0: one process per CPU. The files that fail to compile (test
        # data, code for other Python versions) are not imported.
        subprocess.run(
            [python, "-m", "compileall", "-q", "-j", "0", *paths],
            stdout=subprocess.DEVNULL,
            check=False,
        )


def measure(settings: Settings, impls: Sequence[Implementation], only: set[str]) -> dict[str, Any]:
    """Run every repetition and return the results in the form of results.json."""
    raise_own_file_limit()
    load_before = _load_average()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cotybench-") as folder:
        events = EventSocket(Path(folder) / "events.sock")
        try:
            records = run_all(Bench(events, settings, Path(folder)), impls, steps(settings, only))
        finally:
            events.close()
    values = report.collect(records, impls)
    info = machine(impls)
    info["load_average"] = {"start": load_before, "end": _load_average()}
    return {
        "machine": info,
        "settings": dataclasses.asdict(settings),
        "implementations": [dataclasses.asdict(impl) for impl in impls],
        "seconds": time.monotonic() - started,
        "medians": {
            key: {impl: report.median(per_rep) for impl, per_rep in row.items()}
            for key, row in values.items()
        },
        "values": values,
        "ratios": {
            "this/2.2.0": report.ratios(values, THIS, scenarios.BASELINE),
            "this/fork": report.ratios(values, THIS, FORK),
        },
        "targets": [
            dataclasses.asdict(target) | {"met": target.met, "verdict": target.verdict()}
            for target in report.targets(values, settings)
        ],
        "runs": records,
    }


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_args(argv)
    if options.render:
        # The report again, from the results of an earlier run.
        results = json.loads(options.render.read_text())
        settings = Settings(**results["settings"])
        impls = [Implementation(**impl) for impl in results["implementations"]]
        options.json = None
    else:
        settings = scenarios.SMOKE if options.smoke else scenarios.FULL
        if options.repetitions:
            settings = dataclasses.replace(settings, repetitions=options.repetitions)
        only = set(options.only.split(",")) if options.only else set(STEPS)
        if not only <= set(STEPS):
            raise SystemExit(f"unknown scenarios: {', '.join(sorted(only - set(STEPS)))}")
        impls = scenarios.implementations(options.this_python, options.baseline_python)
        if not options.smoke:
            compile_bytecode(impls)
        results = measure(settings, impls, only)

    # JSON turns the tuple of sizes into a list.
    settings = dataclasses.replace(settings, startup_sizes=tuple(settings.startup_sizes))
    values = report.collect(results["runs"], impls)
    text = render(results, values, settings, impls, report.targets(values, settings))
    print(text)
    if options.markdown:
        options.markdown.write_text(text)
    if options.json:
        options.json.write_text(json.dumps(results, indent=1) + "\n")

    # In smoke mode, a run that could not be measured fails the command and
    # so the test. A full run reports its failures in the table.
    broken = [
        run
        for run in results["runs"]
        if run["error"] and run["implementation"] != scenarios.BASELINE
    ]
    return 1 if broken and options.smoke else 0


if __name__ == "__main__":
    sys.exit(main())
