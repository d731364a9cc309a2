"""The configuration file that a reload rereads.

A JSON object such as ``{"label": "blue"}``. Each response carries the
``label`` that its worker started with, which shows whether a reload has
reached that worker.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Final

MAX_LABEL_LENGTH: Final = 200


class ConfigError(ValueError):
    """A configuration file that cannot be used."""


@dataclasses.dataclass(frozen=True)
class Config:
    label: str = "default"


def load_config(path: Path) -> Config:
    """Read a configuration file. A missing ``label`` takes its default value.

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
    label = raw.get("label", Config.label)
    if not isinstance(label, str) or len(label) > MAX_LABEL_LENGTH:
        raise ConfigError(
            f"{path}: invalid label {label!r}: expected a string of at most "
            f"{MAX_LABEL_LENGTH} characters"
        )
    return Config(label=label)


class ConfigSource:
    """The master's current configuration, reread from ``path`` on reload.

    Workers are forked from the master, so each new worker starts with the
    configuration that the master held when it forked that worker. Without
    a path, the configuration is the default one and a reload keeps it.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.current = Config() if path is None else load_config(path)

    def __repr__(self) -> str:
        return f"<ConfigSource {self.path} label={self.current.label!r}>"

    def reload(self) -> Config:
        """Reread the file and return the new configuration.

        Raises ``ConfigError``, and keeps the current configuration, if the
        file cannot be used.
        """
        if self.path is not None:
            self.current = load_config(self.path)
        return self.current
