"""Unix socket paths under a long TMPDIR: short enough, or a clear error."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import pytest

from cotyledon_testkit import ManagerProcess
from cotyledon_testkit import NotifyReceiver

HERE = Path(__file__).parent

MakeTmpdir = Callable[[int], str]


@pytest.fixture
def long_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[MakeTmpdir]:
    """A factory of directories whose path has exactly the given length,
    made the TMPDIR of this process and of the processes it starts."""
    base = tempfile.mkdtemp(prefix="ct-", dir="/tmp")

    def make(length: int) -> str:
        padding = length - len(base) - 1
        assert padding > 0, f"cannot make a path of {length} characters under {base}"
        path = os.path.join(base, "d" * padding)
        os.makedirs(path)
        monkeypatch.setenv("TMPDIR", path)
        # tempfile reads TMPDIR once and caches it.
        monkeypatch.setattr(tempfile, "tempdir", path)
        return path

    yield make
    shutil.rmtree(base, ignore_errors=True)


# At 50 bytes the harness's directory fits, and at 70 the manager keeps the
# test's TMPDIR.
@pytest.mark.parametrize("length", [50, 70])
def test_forkserver_manager_under_long_tmpdir(long_tmpdir: MakeTmpdir, length: int) -> None:
    long_tmpdir(length)

    with ManagerProcess("harness_apps:forkserver_sleepers", sys_path=[HERE]) as harness:
        harness.wait_ready()
        harness.send_signal(signal.SIGTERM)
        status = harness.wait_exit()

    assert status == 0


def test_harness_rejects_too_long_tmpdir(long_tmpdir: MakeTmpdir) -> None:
    path = long_tmpdir(90)

    with pytest.raises(OSError, match="too long for a Unix socket") as caught:
        ManagerProcess("harness_apps:sleepers", sys_path=[HERE])

    message = str(caught.value)
    assert path in message
    assert "108 bytes" in message
    assert "set TMPDIR to a shorter directory" in message
    assert os.listdir(path) == []


def test_notify_receiver_under_long_tmpdir(long_tmpdir: MakeTmpdir) -> None:
    path = long_tmpdir(75)

    with NotifyReceiver() as receiver:
        address = receiver.address

    assert address.startswith(path)


def test_notify_receiver_rejects_too_long_tmpdir(long_tmpdir: MakeTmpdir) -> None:
    path = long_tmpdir(90)

    with pytest.raises(OSError, match="too long for a Unix socket") as caught:
        NotifyReceiver()

    message = str(caught.value)
    assert path in message
    assert "108 bytes" in message
    assert "set TMPDIR to a shorter directory" in message
    assert os.listdir(path) == []


def test_notify_receiver_rejects_too_long_address() -> None:
    address = "/tmp/" + "n" * 110

    with pytest.raises(OSError, match="pass a shorter address"):
        NotifyReceiver(address)
