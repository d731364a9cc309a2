"""Entry points read from the metadata directories on the path."""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest

from cotyledon._discovery import ENTRY_POINT_GROUP
from cotyledon._discovery import declared_entry_points


def _distribution(root: Path, directory: str, entry_points: str | None) -> None:
    metadata = root / directory
    metadata.mkdir(parents=True)
    if entry_points is not None:
        (metadata / "entry_points.txt").write_text(entry_points)


@pytest.mark.parametrize("group", [ENTRY_POINT_GROUP, "pytest11", "console_scripts"])
def test_entry_points_match_importlib_metadata(group: str) -> None:
    expected = sorted((e.name, e.value) for e in importlib.metadata.entry_points(group=group))

    found = sorted((e.name, e.value) for e in declared_entry_points(group))

    assert found == expected
    if group == ENTRY_POINT_GROUP:
        assert ("systemd", "cotyledon_systemd._entry_point:create_listener") in found


def test_reads_only_the_group_asked_for(tmp_path: Path) -> None:
    _distribution(
        tmp_path,
        "alpha-1.0.dist-info",
        "# comment\n[console_scripts]\nalpha = alpha:main\n\n"
        "[cotyledon.listeners]\n; another comment\nfirst = alpha.listen:make\n"
        "second=alpha.listen:Factory.build [extra]\n",
    )

    found = declared_entry_points(ENTRY_POINT_GROUP, [str(tmp_path)])

    assert [(e.name, e.value, e.distribution) for e in found] == [
        ("first", "alpha.listen:make", "alpha"),
        ("second", "alpha.listen:Factory.build [extra]", "alpha"),
    ]


def test_first_distribution_on_the_path_wins(tmp_path: Path) -> None:
    _distribution(tmp_path / "a", "My.Pkg-2.0.dist-info", "[g]\nx = new:x\n")
    _distribution(tmp_path / "b", "my_pkg-1.0.dist-info", "[g]\nx = old:x\n")
    _distribution(tmp_path / "b", "other.egg-info", "[g]\ny = other:y\n")
    _distribution(tmp_path / "b", "bare-1.0-py3.11.egg-info", None)

    found = declared_entry_points("g", [str(tmp_path / "a"), str(tmp_path / "b"), "/nonexistent"])

    assert [(e.value, e.distribution) for e in found] == [
        ("new:x", "my_pkg"),
        ("other:y", "other"),
    ]


def test_load_follows_the_attribute_path(tmp_path: Path) -> None:
    package = tmp_path / "discovered_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("class Factory:\n    class Inner:\n        value = 42\n")
    _distribution(
        tmp_path, "discovered_pkg-1.0.dist-info", "[g]\nv = discovered_pkg:Factory.Inner.value\n"
    )
    code = (
        "import json, sys\n"
        "from cotyledon._discovery import declared_entry_points\n"
        f"[entry] = declared_entry_points('g', [{str(tmp_path)!r}])\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "print(json.dumps(entry.load()))\n"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert json.loads(out.stdout) == 42


def test_manager_import_leaves_importlib_metadata_out() -> None:
    code = (
        "import sys, cotyledon\n"
        "from cotyledon._discovery import discover_listeners\n"
        "discover_listeners()\n"
        "print('importlib.metadata' in sys.modules)\n"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )

    assert out.stdout.strip() == "False"
