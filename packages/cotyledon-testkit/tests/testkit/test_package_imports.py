"""What importing the testkit loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

import cotyledon_testkit


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


def test_listener_entry_point_loads_no_harness() -> None:
    modules = _modules_after("from cotyledon_testkit._listener import create_listener")

    assert "cotyledon_testkit._listener" in modules
    assert "cotyledon_testkit._harness" not in modules
    assert "cotyledon_testkit._simulator" not in modules


@pytest.mark.parametrize("name", cotyledon_testkit.__all__)
def test_public_name_resolves(name: str) -> None:
    value = getattr(cotyledon_testkit, name)

    assert getattr(value, "__name__", name) == name
    assert name in dir(cotyledon_testkit)


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Missing'"):
        _ = cotyledon_testkit.Missing  # type: ignore[attr-defined]
