"""The `cotyledon` distribution: the 2.x name, installing cotyledon-core."""

from __future__ import annotations

import importlib.metadata


def test_distribution_version_follows_2x() -> None:
    # Higher than 2.2.0, so that `cotyledon>=2.2.0` accepts it.
    assert importlib.metadata.version("cotyledon") == "3.0.0.dev0"


def test_distribution_requires_cotyledon_core() -> None:
    requires = importlib.metadata.requires("cotyledon") or []

    assert "cotyledon-core==3.0.0.dev0" in requires


def test_distribution_ships_no_code() -> None:
    files = importlib.metadata.files("cotyledon") or []

    assert not [f for f in files if f.suffix == ".py" or f.parts[0] == "cotyledon"]
