"""From per-run outcomes to medians, same-run ratios, targets and tables."""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from typing import Any

from benchmarks.scenarios import BASELINE
from benchmarks.scenarios import FORK
from benchmarks.scenarios import THIS
from benchmarks.scenarios import THREAD
from benchmarks.scenarios import Implementation
from benchmarks.scenarios import Settings

# Figures that are verdicts or counts of a fixed whole, not quantities.
_NO_RATIO = frozenset({"scale_clean", "burst_back"})

Values = dict[str, dict[str, list[float | None]]]
"""figure -> implementation -> one value per repetition (None: not measured)."""


@dataclasses.dataclass(frozen=True)
class Figure:
    key: str
    label: str
    unit: str
    scale: float
    digits: int


def figures(settings: Settings) -> list[Figure]:
    """Return the rows of the table, in order. Values are stored unscaled."""
    largest = settings.scale_workers
    rows = [Figure(f"startup_{n}", f"startup, N={n}", "s", 1.0, 3) for n in settings.startup_sizes]
    rows += [
        Figure(f"master_cpu_{n}", f"master CPU from exec to the last run(), N={n}", "s", 1.0, 2)
        for n in settings.startup_sizes
    ]
    rows += [
        Figure(f"worker_cpu_{n}", f"worker CPU from fork to run(), N={n}", "ms", 1e3, 2)
        for n in settings.startup_sizes
    ]
    first = settings.startup_sizes[0]
    rows += [
        Figure(
            f"ready_{first}",
            f"exec to the master's last report before run() or forking, N={first}",
            "s",
            1.0,
            3,
        ),
        Figure(f"stop_{largest}", f"stop after the N={largest} start", "s", 1.0, 3),
        Figure(
            "scale_clean",
            f"N={largest} starts, runs {settings.scale_hold:g} s, stops cleanly",
            "runs",
            1.0,
            0,
        ),
        Figure(
            "respawn_median",
            f"respawn of one worker, median of {settings.respawn_kills}",
            "ms",
            1e3,
            1,
        ),
        Figure(
            "respawn_max", f"respawn of one worker, max of {settings.respawn_kills}", "ms", 1e3, 1
        ),
        Figure("burst_back", f"burst: workers back of {settings.respawn_workers}", "", 1.0, 0),
        Figure(
            "burst_all", f"burst: {settings.respawn_workers} killed, until all back", "ms", 1e3, 1
        ),
        Figure("burst_spread", "burst: first to last replacement in run()", "ms", 1e3, 1),
        Figure("shutdown", f"shutdown, N={settings.shutdown_workers}", "ms", 1e3, 1),
        Figure("reload", f"reload, N={settings.reload_workers}", "ms", 1e3, 1),
        Figure(
            "idle_cpu",
            f"idle N={settings.idle_workers}: master CPU in {settings.idle_seconds:g} s",
            "ms",
            1e3,
            0,
        ),
        Figure("idle_switches", "idle: master context switches", "", 1.0, 0),
        Figure("master_pss", "idle: master PSS", "MiB", 1 / 1024, 2),
        Figure("worker_pss", "idle: worker PSS, mean", "MiB", 1 / 1024, 2),
        Figure("worker_pss_max", "idle: worker PSS, max", "MiB", 1 / 1024, 2),
        Figure("worker_overhead", "idle: worker PSS over a fork-floor child", "MiB", 1 / 1024, 2),
        Figure(
            "crash_spawns",
            f"crash loop N={settings.crash_workers}: spawns in {settings.crash_seconds:g} s",
            "",
            1.0,
            0,
        ),
        Figure("crash_cpu", "crash loop: master CPU", "% of a core", 1.0, 2),
        Figure("crash_exit", "crash loop: SIGTERM to exit", "ms", 1e3, 1),
    ]
    return [row for row in rows if row.key != "stop_1" or largest != 1]


def collect(records: Sequence[dict[str, Any]], impls: Sequence[Implementation]) -> Values:
    """Arrange the outcomes of every run by figure, implementation and repetition."""
    repetitions = 1 + max((record["repetition"] for record in records), default=0)
    values: Values = {}
    for record in records:
        for key, value in record["figures"].items():
            row = values.setdefault(key, {impl.key: [None] * repetitions for impl in impls})
            row[record["implementation"]][record["repetition"]] = value
    pss = values.get("worker_pss")
    if pss is not None and FORK in pss:
        floor = pss[FORK]
        values["worker_overhead"] = {
            key: [
                None if v is None or f is None else v - f
                for v, f in zip(per_rep, floor, strict=True)
            ]
            for key, per_rep in pss.items()
            if key != FORK
        }
    return values


def median(values: Sequence[float | None]) -> float | None:
    present = [value for value in values if value is not None]
    return statistics.median(present) if present else None


def ratios(values: Values, numerator: str, denominator: str) -> dict[str, list[float]]:
    """Per figure, the ratio of two implementations in each repetition that measured both."""
    found: dict[str, list[float]] = {}
    for key, row in values.items():
        if key in _NO_RATIO or numerator not in row or denominator not in row:
            continue
        pairs = zip(row[numerator], row[denominator], strict=True)
        same_run = [a / b for a, b in pairs if a is not None and b is not None and b > 0]
        if same_run:
            found[key] = same_run
    return found


@dataclasses.dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    strict: bool
    """True: the value must be below the limit; False: at most the limit."""
    shown: str
    """The value as the table shows it, with its unit."""
    limit_shown: str

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value < self.limit if self.strict else self.value <= self.limit

    def verdict(self) -> str:
        if self.value is None:
            return "not measured"
        if self.limit == 0:
            return "met" if self.met else f"missed by {self.value:g}"
        factor = self.value / self.limit
        if self.met:
            return f"met, {100 * (1 - factor):.0f} % under the limit"
        return f"missed by {factor:.2f}x the limit"


def targets(values: Values, settings: Settings) -> list[Target]:
    this_fork = ratios(values, THIS, FORK)
    this_base = ratios(values, THIS, BASELINE)

    def own(key: str) -> float | None:
        return median(values.get(key, {}).get(THIS, []))

    found = [
        _target(
            f"startup N={n} within 2x the fork floor",
            median(this_fork.get(f"startup_{n}", [])),
            2.0,
            unit="x",
        )
        for n in settings.startup_sizes
        if n >= 256
    ]
    found.append(
        _target(
            "respawn median no slower than 2.2.0",
            median(this_base.get("respawn_median", [])),
            1.0,
            unit="x",
        )
    )
    found.append(
        _target(
            f"burst of {settings.respawn_workers} back within 0.1 s of the first respawn",
            own("burst_spread"),
            0.1,
            unit="ms",
            scale=1e3,
            digits=1,
        )
    )
    found += [
        _target(f"{key} no slower than 2.2.0", median(this_base.get(key, [])), 1.0, unit="x")
        for key in ("shutdown", "reload")
    ]
    switches = [v for v in values.get("idle_switches", {}).get(THIS, []) if v is not None]
    found.append(
        _target(
            "idle master: 0 context switches (every run)",
            max(switches) if switches else None,
            0.0,
            unit="",
            digits=0,
        )
    )
    found.append(
        _target(
            "worker PSS over a fork-floor child under 2 MiB",
            own("worker_overhead"),
            2048.0,
            unit="MiB",
            scale=1 / 1024,
            strict=True,
        )
    )
    found.append(
        _target(
            "crash loop: master CPU under 1 % of a core",
            own("crash_cpu"),
            1.0,
            unit="%",
            strict=True,
        )
    )
    found.append(
        _target(
            "crash loop: exit within 0.1 s of SIGTERM",
            own("crash_exit"),
            0.1,
            unit="ms",
            scale=1e3,
            digits=1,
        )
    )
    clean = [v for v in values.get("scale_clean", {}).get(THIS, []) if v is not None]
    found.append(
        Target(
            f"N={settings.scale_workers} starts and stops cleanly (every run)",
            None if not clean else float(len(clean) - sum(clean)),
            0.0,
            False,
            f"{int(sum(clean))} of {len(clean)} runs clean" if clean else "-",
            "every run",
        )
    )
    return found


def _target(
    name: str,
    value: float | None,
    limit: float,
    *,
    unit: str,
    scale: float = 1.0,
    digits: int = 2,
    strict: bool = False,
) -> Target:
    def show(v: float) -> str:
        text = f"{v * scale:.{digits}f}"
        if unit == "x":
            return f"{text}x"
        return f"{text} {unit}".strip()

    return Target(
        name,
        value,
        limit,
        strict,
        "-" if value is None else show(value),
        ("< " if strict else "<= ") + show(limit),
    )


def _cell(value: float | None, figure: Figure) -> str:
    if value is None:
        return "-"
    if figure.key == "scale_clean":
        return "yes" if value else "no"
    return f"{value * figure.scale:.{figure.digits}f}"


def _label(figure: Figure) -> str:
    return f"{figure.label} ({figure.unit})" if figure.unit else figure.label


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def medians_table(values: Values, settings: Settings, impls: Sequence[Implementation]) -> list[str]:
    this_base = ratios(values, THIS, BASELINE)
    this_fork = ratios(values, THIS, FORK)
    this_thread = ratios(values, THIS, THREAD)
    keys = [impl.key for impl in impls]
    header = ["figure", *(impl.label for impl in impls)]
    if BASELINE in keys:
        header.append("this / 2.2.0")
    header.append("this / fork floor")
    if THREAD in keys:
        header.append("this / thread floor")
    rows = []
    for figure in figures(settings):
        row = values.get(figure.key)
        if row is None:
            continue
        cells = [_label(figure)]
        for key in keys:
            if figure.key == "scale_clean":
                clean = [v for v in row.get(key, []) if v is not None]
                cells.append(f"{int(sum(clean))}/{len(clean)} clean" if clean else "-")
            else:
                cells.append(_cell(median(row.get(key, [])), figure))
        tables = [this_base] if BASELINE in keys else []
        tables.append(this_fork)
        if THREAD in keys:
            tables.append(this_thread)
        for table in tables:
            ratio = median(table.get(figure.key, []))
            cells.append("-" if ratio is None else f"{ratio:.2f}")
        rows.append(cells)
    return _table(header, rows)


def targets_table(found: Sequence[Target]) -> list[str]:
    rows = [[t.name, t.shown, t.limit_shown, t.verdict()] for t in found]
    return _table(["target (this project)", "measured", "limit", "verdict"], rows)


def repetitions_table(
    values: Values, settings: Settings, impls: Sequence[Implementation]
) -> list[str]:
    rows = []
    for figure in figures(settings):
        row = values.get(figure.key)
        if row is None:
            continue
        cells = [_label(figure)]
        for impl in impls:
            per_rep = row.get(impl.key, [])
            cells.append(", ".join(_cell(v, figure) for v in per_rep) if per_rep else "-")
        rows.append(cells)
    return _table(["figure", *(impl.label for impl in impls)], rows)
