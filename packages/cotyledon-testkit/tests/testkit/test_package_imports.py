"""What importing the testkit loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import cotyledon_testkit
from cotyledon_testkit._channel_env import CHANNEL_ENV
from cotyledon_testkit._harness_listener import HarnessListener
from cotyledon_testkit._listener import create_listener

# A manager whose one worker writes the modules it inherited from the
# master to the file argv[1], then exits 0: with restart="never", the
# manager then stops. argv[2] is "discover" to load the entry points, as a
# manager does by default.
MANAGER_SCRIPT = """
import os, sys
import cotyledon

class DumpModules(cotyledon.Service):
    def __init__(self, worker_id, path):
        super().__init__(worker_id)
        self._path = path

    def run(self):
        with open(self._path + ".tmp", "w") as file:
            file.write("\\n".join(sorted(sys.modules)))
        os.rename(self._path + ".tmp", self._path)
        sys.exit(0)

manager = cotyledon.ServiceManager(discover_listeners=sys.argv[2] == "discover")
manager.add(DumpModules, args=(sys.argv[1],), restart="never")
manager.run()
"""


def _environment_outside_harness() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if name != CHANNEL_ENV}


def _modules_after(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script],
        env=_environment_outside_harness(),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(out.stdout.split())


def _worker_modules(tmp_path: Path, mode: str) -> set[str]:
    """Run a manager outside a harness; return the modules of its worker,
    forked from the master."""
    path = tmp_path / f"modules-{mode}.txt"
    done = subprocess.run(
        [sys.executable, "-c", MANAGER_SCRIPT, str(path), mode],
        env=_environment_outside_harness(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(path.read_text().split())


def test_listener_entry_point_loads_no_harness() -> None:
    modules = _modules_after("from cotyledon_testkit._listener import create_listener")

    assert "cotyledon_testkit._listener" in modules
    assert "cotyledon_testkit._harness" not in modules
    assert "cotyledon_testkit._simulator" not in modules


def test_entry_point_outside_harness_loads_no_channel() -> None:
    modules = _modules_after(
        "from cotyledon_testkit._listener import create_listener\nassert create_listener() is None"
    )

    assert "cotyledon_testkit._channel" not in modules
    assert "cotyledon_testkit._harness_listener" not in modules
    assert "json" not in modules


def test_master_outside_harness_loads_no_channel(tmp_path: Path) -> None:
    without_listeners = _worker_modules(tmp_path, "skip")
    with_listeners = _worker_modules(tmp_path, "discover")

    added = with_listeners - without_listeners

    testkit_modules = {name for name in added if name.startswith("cotyledon_testkit")}
    assert testkit_modules == {
        "cotyledon_testkit",
        "cotyledon_testkit._channel_env",
        "cotyledon_testkit._listener",
    }
    assert "json" not in added


def test_entry_point_under_harness_creates_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHANNEL_ENV, "/run/channel.sock")

    assert isinstance(create_listener(), HarnessListener)


def test_entry_point_with_empty_channel_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHANNEL_ENV, "")

    assert create_listener() is None


@pytest.mark.parametrize("name", cotyledon_testkit.__all__)
def test_public_name_resolves(name: str) -> None:
    value = getattr(cotyledon_testkit, name)

    assert getattr(value, "__name__", name) == name
    assert name in dir(cotyledon_testkit)


def test_unknown_name_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Missing'"):
        _ = cotyledon_testkit.Missing  # type: ignore[attr-defined]
