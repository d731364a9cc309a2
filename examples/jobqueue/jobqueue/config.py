"""The configuration file that workers reread on reload.

``config.json`` sits next to the spool directory::

    {"pause": 0.05, "label": "first pass"}

``pause`` is the number of seconds a worker waits after each job. ``label``
is copied into each result, which shows the configuration that produced it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

MAX_PAUSE = 60.0


class ConfigError(ValueError):
    """A configuration file that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Config:
    pause: float = 0.05
    label: str = "default"


def config_path(spool_root: Path) -> Path:
    """Return the path of the configuration file of the spool at ``spool_root``."""
    return spool_root.parent / "config.json"


def load_config(path: Path) -> Config:
    """Read a configuration file; missing keys take their default value.

    Raises ``ConfigError`` when the file is missing or invalid.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"failed to read {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    unknown = sorted(set(raw) - {field.name for field in dataclasses.fields(Config)})
    if unknown:
        raise ConfigError(f"{path}: unknown keys {', '.join(unknown)}")
    defaults = Config()
    pause = raw.get("pause", defaults.pause)
    label = raw.get("label", defaults.label)
    if (
        not isinstance(pause, (int, float))
        or isinstance(pause, bool)
        or not 0 <= pause <= MAX_PAUSE
    ):
        raise ConfigError(
            f"{path}: invalid pause {pause!r}: expected a number of seconds from 0 to {MAX_PAUSE}"
        )
    if not isinstance(label, str):
        raise ConfigError(f"{path}: invalid label {label!r}: expected a string")
    return Config(pause=float(pause), label=label)


def write_config(path: Path, config: Config) -> None:
    """Write a configuration file in one step, so that no reader sees half of it."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(config)) + "\n", encoding="utf-8")
    temporary.replace(path)
