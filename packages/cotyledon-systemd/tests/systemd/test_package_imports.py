"""What importing the package loads, and its public names."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cotyledon_systemd


def test_package_import_loads_no_module() -> None:
    script = "import sys, cotyledon_systemd\nprint(' '.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )

    loaded = {name for name in out.stdout.split() if name.startswith("cotyledon")}
    assert loaded == {"cotyledon_systemd"}


@pytest.mark.parametrize("name", cotyledon_systemd.__all__)
def test_public_name_resolves(name: str) -> None:
    value = getattr(cotyledon_systemd, name)

    assert getattr(value, "__name__", name) == name
    assert name in dir(cotyledon_systemd)


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Missing'"):
        _ = cotyledon_systemd.Missing  # type: ignore[attr-defined]
