"""Helpers of the oslo.config glue tests."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Final

from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import ProbeEvent

APPS_DIR: Final = Path(__file__).parent

CONFIG_ENV: Final = "OSLO_APPS_CONFIG"
"""The environment variable that gives the apps their configuration file."""

StartApp = Callable[..., ManagerProcess]


def write_config(path: Path, **values: object) -> None:
    """Write an oslo.config file with ``values`` in its DEFAULT group."""
    lines = ["[DEFAULT]", *(f"{name} = {value}" for name, value in values.items())]
    path.write_text("\n".join(lines) + "\n")


def worker_runs(app: ManagerProcess, service: str, after: int = 0) -> list[ProbeEvent]:
    return [e for e in app.events[after:] if e.kind == "run" and e["service"] == service]


def option_logged(log: str, pid: int, name: str, value: object) -> bool:
    """Tell whether process ``pid`` logged option ``name`` with ``value``
    (``ConfigOpts.log_opt_values`` writes ``name<padding> = value``)."""
    pattern = rf"^\S+ \S+ {pid} DEBUG cotyledon\.oslo_config_glue: {re.escape(name)}\s+= "
    pattern += re.escape(str(value)) + "$"
    return re.search(pattern, log, re.MULTILINE) is not None
